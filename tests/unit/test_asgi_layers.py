"""The ASGI layers in front of KServe's app, each alone: request ids, bearer auth, body limit, interop."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from predictor.asgi import request_id
from predictor.asgi.auth import BearerAuthApp, TokenFile
from predictor.asgi.interop import FormAsJsonApp, ModelVersionApp
from predictor.asgi.limits import BodyLimitApp
from predictor.asgi.request_id import RequestIdApp, accept
from predictor.asgi.types import Receive, Scope, Send
from tests.unit.asgi_calls import Inner, call, http_scope, json_error

MADE_ID = re.compile(r"[0-9a-f]{32}")  # W3C trace-id format

# ---- request ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [b"abc-1", b"0f8fad5b-d9cb-469f-a165-70867728950e", b"x" * 128, "grpc:id/7"])
def test_plausible_ids_are_kept(given: bytes | str) -> None:
    kept, own = accept(given)
    assert own and kept == (given.decode() if isinstance(given, bytes) else given)


@pytest.mark.parametrize("given", [None, b"", b"x" * 129, b"with space", b"new\nline", "caf\u00e9", b"\xff"])
def test_implausible_ids_are_replaced(given: bytes | str | None) -> None:
    made, own = accept(given)
    assert not own and MADE_ID.fullmatch(made)


def test_request_id_is_echoed_and_visible_inside() -> None:
    seen: list[str | None] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(request_id.current())
        await Inner()(scope, receive, send)

    answer = call(RequestIdApp(inner), http_scope(headers=[(b"x-request-id", b"given-1")]), [b"{}"])
    assert answer.headers[b"x-request-id"] == b"given-1"
    assert seen == ["given-1"]
    assert request_id.current() is None  # reset after the request


def test_a_made_request_id_reaches_kserve_as_a_header() -> None:
    inner = Inner()
    answer = call(RequestIdApp(inner), http_scope(headers=[(b"x-request-id", b"bad id")]))
    made = answer.headers[b"x-request-id"]
    assert MADE_ID.fullmatch(made.decode())
    assert [v for k, v in inner.scopes[0]["headers"] if k == b"x-request-id"] == [made]


# ---- bearer auth --------------------------------------------------------------------------------------


@pytest.fixture
def tokens(tmp_path: Path) -> TokenFile:
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    return TokenFile(path)


def test_auth_refuses_without_reading_the_body(tokens: TokenFile) -> None:
    inner = Inner()
    answer = call(BearerAuthApp(inner, tokens), http_scope(), [b"x" * 10, b"y" * 10])
    assert answer.status == 401
    assert answer.headers[b"www-authenticate"] == b'Bearer realm="servekit"'
    assert "Authorization: Bearer" in json_error(answer)
    assert answer.chunks_read == 0 and not inner.scopes


def test_auth_logs_a_refused_path_on_one_line(tokens: TokenFile, caplog: pytest.LogCaptureFixture) -> None:
    forged = "/v2/models/iris\n2026-01-01 FAKE LINE/infer"  # %0a, as uvicorn decodes it
    with caplog.at_level(logging.DEBUG, logger="predictor.asgi.auth"):
        assert call(BearerAuthApp(Inner(), tokens), http_scope(path=forged)).status == 401
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("401 for")]
    assert "\n" not in line and "\\n2026-01-01 FAKE LINE" in line


def test_auth_says_invalid_token_for_a_wrong_one(tokens: TokenFile) -> None:
    answer = call(BearerAuthApp(Inner(), tokens), http_scope(headers=[(b"authorization", b"Bearer nope")]))
    assert answer.status == 401
    assert answer.headers[b"www-authenticate"] == b'Bearer realm="servekit", error="invalid_token"'


def test_auth_passes_an_accepted_token_and_open_paths(tokens: TokenFile) -> None:
    app = BearerAuthApp(Inner(), tokens)
    assert call(app, http_scope(headers=[(b"authorization", b"Bearer s3cret")]), [b"ok"]).body == b"ok"
    assert call(app, http_scope("GET", "/v2/models/iris/ready")).status == 200
    assert call(app, http_scope("GET", "/v2/models/iris")).status == 401


# ---- body limit ---------------------------------------------------------------------------------------


def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    inner = Inner()
    answer = call(BodyLimitApp(inner, 1024), http_scope(headers=[(b"content-length", b"1025")]), [b"x" * 1025])
    assert answer.status == 413
    assert json_error(answer) == (
        "the request body (1025 bytes) is larger than the 1024 bytes this server accepts (--max_body_bytes)"
    )
    assert answer.chunks_read == 0 and not inner.scopes


def test_a_streamed_body_over_the_limit_is_refused_as_it_arrives() -> None:
    inner = Inner()
    chunks = [b"x" * 400] * 10  # chunked transfer encoding: no Content-Length
    answer = call(BodyLimitApp(inner, 1024), http_scope(), chunks)
    assert answer.status == 413
    assert "more than 1024 bytes" in json_error(answer)
    assert answer.chunks_read == 3  # stopped at the chunk that crossed the limit
    assert not inner.scopes


def test_a_body_within_the_limit_arrives_whole_once() -> None:
    inner = Inner()
    answer = call(BodyLimitApp(inner, 1024), http_scope(), [b"a" * 500, b"b" * 524])
    assert answer.status == 200
    assert inner.bodies == [b"a" * 500 + b"b" * 524]


def test_a_malformed_content_length_is_a_400() -> None:
    answer = call(BodyLimitApp(Inner(), 1024), http_scope(headers=[(b"content-length", b"-5")]))
    assert answer.status == 400
    assert "Content-Length must be a number of bytes, got b'-5'" in json_error(answer)


# ---- interop ------------------------------------------------------------------------------------------

FORM = b"application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("path", "headers", "forwarded"),
    [
        ("/v2/models/iris/infer", [(b"content-type", FORM)], b"application/json"),
        ("/v2/models/iris/infer", [(b"content-type", b"application/json")], b"application/json"),
        (
            "/v1/models/iris:predict",
            [(b"content-type", FORM)],
            FORM,
        ),
        (
            "/v2/models/iris/infer",
            [(b"content-type", FORM), (b"inference-header-content-length", b"10")],
            FORM,
        ),
    ],
)
def test_form_type_becomes_json_on_v2_infer_only(
    path: str, headers: list[tuple[bytes, bytes]], forwarded: bytes
) -> None:
    inner = Inner()
    call(FormAsJsonApp(inner), http_scope(path=path, headers=headers))
    assert dict(inner.scopes[0]["headers"])[b"content-type"] == forwarded


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [
        ("/v2/models/iris/versions/1/infer", "/v2/models/iris/infer"),
        ("/v2/models/iris/versions/1/ready", "/v2/models/iris/ready"),
        ("/v2/models/iris/versions/1", "/v2/models/iris"),
        ("/v2/models/roses/versions/3", "/v2/models/roses"),  # KServe answers 404 for the unknown model
        ("/v2/models/iris/infer", "/v2/models/iris/infer"),
    ],
)
def test_versioned_paths_serve_the_models_version(path: str, forwarded: str) -> None:
    inner = Inner()
    assert call(ModelVersionApp(inner, "iris", "1"), http_scope(path=path)).status == 200
    assert inner.scopes[0]["path"] == forwarded


def test_another_version_of_the_model_is_a_404() -> None:
    inner = Inner()
    answer = call(ModelVersionApp(inner, "iris", "1"), http_scope(path="/v2/models/iris/versions/2/infer"))
    assert answer.status == 404
    assert json_error(answer) == "model 'iris' has no version '2'; this server has '1'"
    assert not inner.scopes


# Python 3.12 warns about fork() beside threads; the child only writes to a pipe and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_made_ids_differ_across_forked_workers() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then leave at once
        os.write(write, request_id.new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert MADE_ID.fullmatch(child) and child != request_id.new_id()
