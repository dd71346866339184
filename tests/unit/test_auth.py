"""Bearer tokens: parsing, the open paths, and the token file re-read across a Secret rotation."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from predictor.asgi.auth import NO_TOKEN, WRONG_TOKEN, TokenFile, TokenFileError, bearer_token, is_open
from tests.secret_volume import SecretVolume


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (b"Bearer abc", b"abc"),
        (b"bearer   abc  ", b"abc"),
        ("BEARER abc", b"abc"),
        (b"Basic abc", None),
        (b"Bearer", None),
        (b"Bearer   ", None),
        (b"abc", None),
        (None, None),
    ],
)
def test_bearer_token(value: bytes | str | None, token: bytes | None) -> None:
    assert bearer_token(value) == token


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/metrics",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/iris/ready",
        "/v2/models/iris/versions/1/ready",
        "/v1/models/iris",
    ],
)
def test_health_readiness_and_metrics_are_open(path: str) -> None:
    assert is_open("GET", path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/iris/infer"),
        ("POST", "/v2/models/iris/versions/1/infer"),
        ("POST", "/v1/models/iris:predict"),
        ("POST", "/v1/models/iris:explain"),
        ("GET", "/v2/models/iris"),  # metadata
        ("GET", "/v2/models/iris/versions/1"),
        ("GET", "/v2"),
        ("GET", "/v2/models"),
        ("GET", "/v1/models"),
        ("GET", "/openapi.json"),
        ("POST", "/v2/repository/models/iris/load"),
        ("POST", "/v2/health/live"),  # an open path, but not for a write
        ("GET", "/v2/health/live/../../models/iris"),  # no normalisation games: not the open path
        ("GET", "/anything/new"),  # deny by default
    ],
)
def test_everything_else_needs_a_token(method: str, path: str) -> None:
    assert not is_open(method, path)


def test_tokens_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old-token\n\n  new-token  \n")
    tokens = TokenFile(path)
    assert tokens.check(b"Bearer old-token") is None
    assert tokens.check(b"Bearer new-token") is None
    assert tokens.check(b"Bearer other") == WRONG_TOKEN
    assert tokens.check(b"Bearer old-token-and-more") == WRONG_TOKEN
    assert tokens.check(None) == NO_TOKEN
    assert tokens.check(b"Basic b2xkLXRva2Vu") == NO_TOKEN


@pytest.mark.parametrize(("content", "problem"), [(None, "No such file"), ("\n \n", "holds no token")])
def test_unusable_file_at_start_up(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokenFileError) as caught:
        TokenFile(path)
    assert str(caught.value).startswith(f"--auth_token_file {path}: ")
    assert problem in str(caught.value)


def test_a_rotated_secret_volume_is_read_again(tmp_path: Path) -> None:
    volume = SecretVolume(tmp_path / "secret")
    volume.write("first\n")
    clock = Clock()
    tokens = TokenFile(volume.path, recheck_s=1.0, clock=clock)
    inode_of_the_path = volume.path.lstat().st_ino

    volume.write("second\n")
    assert volume.path.lstat().st_ino == inode_of_the_path  # the swap never touches the path itself
    assert tokens.check(b"Bearer first") is None  # not re-checked yet: at most once a second
    clock.now += 1.0
    assert tokens.check(b"Bearer second") is None
    assert tokens.check(b"Bearer first") == WRONG_TOKEN


def test_a_file_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first")
    clock = Clock()
    tokens = TokenFile(path, recheck_s=0.5, clock=clock)
    with path.open("w") as half:  # an editor or `echo >` mid-write: only a prefix is there yet
        half.write("second")
        half.flush()
        clock.now += 0.5
        assert tokens.check(b"Bearer second") == WRONG_TOKEN, "a half-written token is not taken"
        assert tokens.check(b"Bearer first") is None
        half.write("-longer")
    clock.now += 0.5
    assert tokens.check(b"Bearer second-longer") == WRONG_TOKEN, "not unchanged for a whole recheck yet"
    clock.now += 0.5
    assert tokens.check(b"Bearer second-longer") is None
    assert tokens.check(b"Bearer first") == WRONG_TOKEN


def test_a_broken_new_version_keeps_the_old_tokens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    volume = SecretVolume(tmp_path / "secret")
    volume.write("first\n")
    clock = Clock()
    tokens = TokenFile(volume.path, recheck_s=1.0, clock=clock)
    volume.write("")
    clock.now += 1.0
    with caplog.at_level(logging.WARNING, logger="predictor.asgi.auth"):
        assert tokens.check(b"Bearer first") is None
    assert "keeping the tokens read before" in caplog.text
    assert "holds no token" in caplog.text

    volume.write("third")
    # The new file may reuse the inode of the one read before (freed by the swap): then it looks
    # written in place and is read one recheck later. Either way, within two.
    for _ in range(2):
        clock.now += 1.0
        tokens.check(b"Bearer third")
    assert tokens.check(b"Bearer third") is None
