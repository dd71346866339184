"""Bearer-token authentication for inference and metadata, on REST (v1, v2) and gRPC.

KServe's Python server has none: upstream leaves it to Istio or the gateway. This covers a pod
reached without a mesh. The token file holds one accepted token per line, so a rotation can list
the old and the new token for a while; it is mounted from a Kubernetes Secret.

Health, readiness and ``/metrics`` stay open: kubelet probes and Prometheus carry no token.
Everything else, paths added by a future KServe included, needs one (deny by default).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_interceptor.server import AsyncServerInterceptor

from predictor.asgi.types import ASGIApp, Receive, Scope, Send, header, send_error

logger = logging.getLogger(__name__)

_OPEN_PATH = re.compile(r"/(|metrics|v2/health/(live|ready)|v2/models/[^/]+(/versions/[^/]+)?/ready|v1/models/[^/:]+)")
_GRPC_SERVICE = "/inference.GRPCInferenceService/"
OPEN_GRPC_METHODS = frozenset(_GRPC_SERVICE + m for m in ("ServerLive", "ServerReady", "ModelReady"))
CHALLENGE = b'Bearer realm="servekit"'
_REFUSED = b'Bearer realm="servekit", error="invalid_token"'
NO_TOKEN = "this endpoint needs a bearer token: send 'Authorization: Bearer <token>'"
WRONG_TOKEN = "the bearer token is not accepted"


class TokenFileError(Exception):
    """The token file cannot be used at start-up: the message names the file and the problem."""


def is_open(method: str, path: str) -> bool:
    """Health, readiness and metrics: answered without a token."""
    return method in ("GET", "HEAD") and _OPEN_PATH.fullmatch(path) is not None


def bearer_token(credentials: bytes | str | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` value (scheme in any case), else None."""
    if credentials is None:
        return None
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    scheme, _, token = raw.strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def _digest(token: bytes) -> bytes:
    # Comparing fixed-size digests keeps the comparison's time independent of the tokens' lengths.
    return hashlib.sha256(token).digest()


class TokenFile:
    """The accepted tokens, re-read when the file changes.

    A Kubernetes Secret volume rotates by pointing a ``..data`` symlink at a new directory, so the
    path's own inode never changes and an inotify watch on it goes stale. Instead, at most every
    ``recheck_s``, the path is stat'ed through its symlinks; any change of the file it resolves to
    (device, inode, size, mtime, ctime) makes it be read again: at once when it is another file (a
    swap), one recheck later when the same file was written in place (it may have been half
    written). An unreadable or empty new version keeps the old tokens (with a warning): locking
    every client out is worse than a late rotation.
    """

    def __init__(self, path: Path, *, recheck_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.recheck_s = recheck_s
        self._clock = clock
        try:
            self._seen, self._digests = self._read()
        except (OSError, ValueError) as exc:
            raise TokenFileError(f"--auth_token_file {path}: {exc}") from None
        self._pending: tuple[int, ...] | None = None  # an in-place change waiting to settle
        self._next_check = clock() + recheck_s

    def _signature(self) -> tuple[int, ...]:
        """What changes when the file does, read through the path's symlinks."""
        stat = os.stat(self.path)
        return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

    def _read(self) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
        signature = self._signature()
        tokens = [line.strip() for line in self.path.read_bytes().splitlines()]
        digests = tuple(_digest(token) for token in tokens if token)
        if not digests:
            raise ValueError("the file holds no token (one token per line)")
        return signature, digests

    def refresh(self) -> None:
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self.recheck_s
        try:
            signature = self._signature()
            if signature == self._seen:
                return
            if signature[:2] == self._seen[:2] and signature != self._pending:
                # The same file written in place (not swapped, as a Secret volume is): it may be half
                # written, and a prefix of the new token must not pass. Read it once it has stayed
                # the same for one more recheck.
                self._pending = signature
                return
            self._seen, self._digests = self._read()
        except (OSError, ValueError) as exc:
            logger.warning(
                "--auth_token_file %s changed but cannot be used (%s); keeping the tokens read before", self.path, exc
            )
            return
        logger.info("--auth_token_file %s changed: %d token(s) accepted now", self.path, len(self._digests))

    def check(self, credentials: bytes | str | None) -> str | None:
        """None when ``credentials`` (an Authorization value) carry an accepted token, else the problem."""
        self.refresh()
        token = bearer_token(credentials)
        if token is None:
            return NO_TOKEN
        presented = _digest(token)
        accepted = False
        for digest in self._digests:  # no early exit: the time taken does not say which token matched
            accepted |= hmac.compare_digest(presented, digest)
        return None if accepted else WRONG_TOKEN


class BearerAuthApp:
    """ASGI layer: 401 with ``WWW-Authenticate: Bearer`` unless the path is open or the token accepted."""

    def __init__(self, inner: ASGIApp, tokens: TokenFile) -> None:
        self.inner = inner
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["method"], scope["path"]):
            await self.inner(scope, receive, send)
            return
        problem = self.tokens.check(header(scope, b"authorization"))
        if problem is None:
            await self.inner(scope, receive, send)
            return
        logger.debug(
            "401 for %s %r: %s", scope["method"], scope["path"], problem
        )  # %r: a decoded path may hold a newline
        challenge = CHALLENGE if problem == NO_TOKEN else _REFUSED
        await send_error(send, 401, problem, [(b"www-authenticate", challenge)])


class BearerAuthInterceptor(AsyncServerInterceptor):
    """gRPC: UNAUTHENTICATED unless the method is a health one or ``authorization`` metadata is accepted."""

    def __init__(self, tokens: TokenFile) -> None:
        self.tokens = tokens

    async def intercept(
        self, method: Callable[..., Any], request: Any, context: grpc.aio.ServicerContext, method_name: str
    ) -> Any:
        if method_name not in OPEN_GRPC_METHODS:
            given = next((value for key, value in context.invocation_metadata() or () if key == "authorization"), None)
            problem = self.tokens.check(given)
            if problem is not None:
                logger.debug("UNAUTHENTICATED for %s: %s", method_name, problem)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)
        return await method(request, context)


def load_tokens(path: Path | None) -> TokenFile | None:
    """The token file of ``--auth_token_file``, or None when authentication is off."""
    return None if path is None else TokenFile(path)
