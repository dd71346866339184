#!/usr/bin/env bash
# The object store, for hack/controlplane.sh: versitygw (an S3 API built from its Go module) with
# its posix backend in the state folder (s3/data), on 127.0.0.1:S3_PORT and, when POD_GATEWAY_IP
# is set and is an address of this host (the node's bridge), on POD_GATEWAY_IP:S3_PORT too, so
# pods' storage initializers reach it. The root access key and secret are made at `up` into
# s3/credentials.env (mode 600). Also the commands put-model and s3-credentials.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/storage.sh"   (not run on its own)
set -euo pipefail

# versitygw's default, and what KServe's storage initializer signs for.
readonly S3_REGION="us-east-1"
# The Secret and ServiceAccount `s3-credentials` makes for a namespace.
readonly S3_CREDENTIALS_NAME="servekit-s3"

s3_dir() {
  echo "${STATE_DIR}/s3"
}

# host_has_address IP: true when IP is an address of this host (binding to it works).
host_has_address() {
  python3 -c 'import socket, sys; socket.socket().bind((sys.argv[1], 0))' "$1" 2>/dev/null
}

# The address pods reach the harness's services on: POD_GATEWAY_IP when set and present here.
pod_gateway_ip() {
  local ip="${POD_GATEWAY_IP:-}"
  if [[ -n "${ip}" ]] && host_has_address "${ip}"; then
    echo "${ip}"
  fi
}

make_s3_credentials() {
  local file
  file="$(s3_dir)/credentials.env"
  # Created 0600 whatever the caller's umask.
  (
    umask 077
    printf 'S3_ACCESS_KEY_ID=%s\nS3_SECRET_ACCESS_KEY=%s\n' \
      "servekit$(openssl rand -hex 6)" "$(openssl rand -hex 24)" >"${file}"
  )
  chmod 600 "${file}"
}

start_object_store() {
  local dir ports pod_ip
  dir="$(s3_dir)"
  mkdir -p "${dir}/data"
  make_s3_credentials
  ports=(--port "127.0.0.1:${S3_PORT}")
  pod_ip="$(pod_gateway_ip)"
  if [[ -n "${pod_ip}" ]]; then
    ports+=(--port "${pod_ip}:${S3_PORT}")
    echo "S3_POD_ENDPOINT=${pod_ip}:${S3_PORT}" >"${dir}/pod-endpoint.env"
  elif [[ -n "${POD_GATEWAY_IP:-}" ]]; then
    warn "POD_GATEWAY_IP=${POD_GATEWAY_IP} is not an address of this host: the object store listens on 127.0.0.1 only"
  fi
  # The keys go through the environment, not the command line that `ps` shows.
  # shellcheck source=/dev/null
  source "${dir}/credentials.env"
  START_WRAPPER=(env "ROOT_ACCESS_KEY_ID=${S3_ACCESS_KEY_ID}" "ROOT_SECRET_ACCESS_KEY=${S3_SECRET_ACCESS_KEY}"
    "VGW_REGION=${S3_REGION}")
  start_process object-store "$(binary_path versitygw versitygw)" "${ports[@]}" --quiet posix "${dir}/data"
  # shellcheck disable=SC2034 # read by start_process (processes.sh)
  START_WRAPPER=()
  # Any HTTP answer (403 to an unsigned request) means it serves.
  wait_for object-store 60 "versitygw on 127.0.0.1:${S3_PORT}" curl -sS -o /dev/null "http://127.0.0.1:${S3_PORT}/"
}

s3_url() {
  echo "http://127.0.0.1:${S3_PORT}"
}

# The S3 calls are boto3's (a dev dependency); the repository's .venv has it.
s3_python() {
  local candidate
  for candidate in "${SERVEKIT_ROOT}/.venv/bin/python" python3; do
    if "${candidate}" -c 'import boto3' >/dev/null 2>&1; then
      echo "${candidate}"
      return 0
    fi
  done
  die "no Python with boto3 (tried ${SERVEKIT_ROOT}/.venv/bin/python and python3): run 'make .venv/.dev-installed' or 'pip install boto3'"
}

require_object_store() {
  if [[ ! -f "${STATE_DIR}/ports.env" ]] || ! running_pid object-store >/dev/null; then
    die "the control plane is not up (no object store running for ${STATE_DIR}): run 'hack/controlplane.sh up' first"
  fi
  # shellcheck source=/dev/null
  source "${STATE_DIR}/ports.env"
  # shellcheck source=/dev/null
  source "$(s3_dir)/credentials.env"
}

# put-model DIR URI: every file of DIR under URI (s3://BUCKET[/PREFIX]), the bucket made when needed.
cmd_put_model() {
  local dir="$1" uri="$2"
  [[ -d "${dir}" ]] || usage_error "put-model: ${dir} is not a directory (expected the model's folder)"
  [[ "${uri}" =~ ^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$ ]] ||
    usage_error "put-model: ${uri} is not s3://BUCKET[/PREFIX] (a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens)"
  require_object_store
  AWS_ACCESS_KEY_ID="${S3_ACCESS_KEY_ID}" AWS_SECRET_ACCESS_KEY="${S3_SECRET_ACCESS_KEY}" \
    "$(s3_python)" "${CONTROLPLANE_MODULES}/s3_put.py" --endpoint "$(s3_url)" --region "${S3_REGION}" "${dir}" "${uri}"
}

# s3-credentials NAMESPACE: the Secret (with KServe's S3 annotations) and the ServiceAccount naming
# it that an InferenceService sets as serviceAccountName for storageUri: s3://... from this store.
cmd_s3_credentials() {
  local namespace="$1" endpoint
  check_dns_label "s3-credentials NAMESPACE" "${namespace}"
  require_object_store
  endpoint=""
  if [[ -f "$(s3_dir)/pod-endpoint.env" ]]; then
    # shellcheck source=/dev/null
    source "$(s3_dir)/pod-endpoint.env"
    endpoint="${S3_POD_ENDPOINT}"
  else
    endpoint="127.0.0.1:${S3_PORT}"
    warn "the object store listens on 127.0.0.1 only (POD_GATEWAY_IP was not an address of this host at up): pods cannot reach ${endpoint}"
  fi
  cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: ${S3_CREDENTIALS_NAME}
  namespace: ${namespace}
  annotations:
    serving.kserve.io/s3-endpoint: "${endpoint}"
    serving.kserve.io/s3-usehttps: "0"
    serving.kserve.io/s3-verifyssl: "0"
    serving.kserve.io/s3-region: "${S3_REGION}"
type: Opaque
stringData:
  AWS_ACCESS_KEY_ID: "${S3_ACCESS_KEY_ID}"
  AWS_SECRET_ACCESS_KEY: "${S3_SECRET_ACCESS_KEY}"
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ${S3_CREDENTIALS_NAME}
  namespace: ${namespace}
secrets:
  - name: ${S3_CREDENTIALS_NAME}
YAML
}
