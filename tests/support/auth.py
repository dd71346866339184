"""The bearer token and body limit the guarded test servers run with."""

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GRPC_AUTH = (("authorization", f"Bearer {TOKEN}"),)
BODY_LIMIT = 16384
