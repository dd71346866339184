"""``python -m predictor``: flags, their precedence over ``PREDICTOR_*`` variables, and clean failures.

Only the failure paths call ``main`` in-process: each one returns before a server would start.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from predictor.examples import sklearn_iris
from predictor.server.main import build_parser, main, settings_from_args
from predictor.server.settings import PredictorSettings
from tests.support.server import free_port

OUR_FLAGS = ["--model_dir", "--device", "--batching", "--max_batch_size", "--max_latency_ms", "--max_queue_size"]
KSERVE_FLAGS = ["--http_port", "--grpc_port", "--workers", "--enable_grpc", "--model_name"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PREDICTOR_* variable from the machine running the tests leaks into them."""
    for key in list(os.environ):
        if key.startswith("PREDICTOR_"):
            monkeypatch.delenv(key)


class _NoServer:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("main() got as far as starting a server; these cases must fail before that")


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a regression lets a bad setting through, fail the test instead of serving on :8080."""
    import kserve

    monkeypatch.setattr(kserve, "ModelServer", _NoServer)


@pytest.fixture(autouse=True)
def keep_pytests_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() would take over the test process's logging and excepthooks; real servers test that."""
    import predictor.server.logs

    monkeypatch.setattr(predictor.server.logs, "configure", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "iris"
    sklearn_iris.build(path)
    return path


def _settings(*argv: str) -> PredictorSettings:
    settings: PredictorSettings = settings_from_args(build_parser().parse_args(list(argv)))
    return settings


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {captured.err!r}"
    assert captured.out == ""
    assert lines[0].startswith("predictor: error: ")
    return lines[0]


# ---- the parser -----------------------------------------------------------------------------------


def test_help_lists_our_flags_and_kserves() -> None:
    text = build_parser().format_help()
    for flag in [*OUR_FLAGS, "--no-batching", "--fast_path", "--no-fast_path", "--access_log", *KSERVE_FLAGS]:
        assert re.search(rf"(^|\s|\[){re.escape(flag)}\b", text), f"{flag} missing from --help"
    assert "PREDICTOR_" in text


def test_help_of_our_flags_does_not_contradict_itself() -> None:
    # Our flags default to None so the settings layer can fill them; the help must still say the
    # real default (e.g. 32), not append "(default: None)" next to it.
    text = " ".join(build_parser().format_help().split())  # undo line wrapping
    section = text[text.index("servekit predictor") :]
    assert "default: None" not in section, section


def test_parsing_leaves_unset_flags_none() -> None:
    args = build_parser().parse_args([])
    assert args.model_dir is None
    assert args.max_batch_size is None
    assert args.batching is None
    assert args.model_name is None  # KServe's own default "model" is replaced: the manifest names the model
    assert args.workers is None  # settings decide: PREDICTOR_WORKERS, else 1


# ---- precedence: flag > PREDICTOR_* > default -----------------------------------------------------


def test_defaults() -> None:
    settings = _settings()
    assert settings.model_dir == Path("/mnt/models")
    assert settings.max_batch_size == 32
    assert settings.max_latency_ms == 0.0  # never hold a request back; batches form under load
    assert settings.max_queue_size == 1024
    assert settings.batching is True
    assert settings.fast_path is True
    assert settings.access_log is False
    assert settings.device is None
    assert settings.model_name is None
    assert settings.workers == 1


def test_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTOR_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("PREDICTOR_MODEL_DIR", "/models/digits")
    monkeypatch.setenv("PREDICTOR_BATCHING", "false")
    monkeypatch.setenv("PREDICTOR_DEVICE", "cuda:1")
    settings = _settings()
    assert settings.max_batch_size == 8
    assert settings.model_dir == Path("/models/digits")
    assert settings.batching is False
    assert settings.device == "cuda:1"


def test_flag_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTOR_MAX_BATCH_SIZE", "8")
    monkeypatch.setenv("PREDICTOR_BATCHING", "false")
    monkeypatch.setenv("PREDICTOR_MAX_LATENCY_MS", "9")
    settings = _settings("--max_batch_size", "64", "--batching", "--max_latency_ms", "0.5")
    assert settings.max_batch_size == 64
    assert settings.batching is True
    assert settings.max_latency_ms == 0.5


def test_negative_boolean_flags() -> None:
    settings = _settings("--no-batching", "--no-fast_path", "--access_log")
    assert settings.batching is False
    assert settings.fast_path is False
    assert settings.access_log is True


def test_model_name_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTOR_MODEL_NAME", "from-env")
    assert _settings().model_name == "from-env"
    assert _settings("--model_name", "from-flag").model_name == "from-flag"


def test_unrelated_predictor_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # Kubernetes injects <SERVICE>_SERVICE_HOST/_PORT for every Service; one named "predictor-..."
    # must not stop the server.
    monkeypatch.setenv("PREDICTOR_PREDICTOR_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("PREDICTOR_PORT", "tcp://10.0.0.1:80")
    assert _settings().max_batch_size == 32


# ---- clean failures: exit status 2 and one line on stderr -----------------------------------------


def free_ports() -> list[str]:
    """Ports nobody holds: on a shared machine 8080 may be taken, and the port check would answer
    before the failure these tests are about."""
    return ["--http_port", str(free_port()), "--grpc_port", str(free_port())]


def test_missing_model_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["--model_dir", str(missing), *free_ports()]) == 2
    assert _one_error_line(capsys) == f"predictor: error: no model.yaml in model directory '{missing}'"


def test_missing_model_dir_from_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREDICTOR_MODEL_DIR", str(tmp_path / "from-env"))
    assert main(free_ports()) == 2
    assert "from-env" in _one_error_line(capsys)


def test_hash_mismatch(iris_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = Path(shutil.copytree(iris_dir, tmp_path / "iris"))
    artifact = model_dir / "model.joblib"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 0xFF
    artifact.write_bytes(bytes(data))

    assert main(["--model_dir", str(model_dir), *free_ports()]) == 2

    line = _one_error_line(capsys)
    assert re.fullmatch(
        r"predictor: error: artifact '.*model\.joblib' has sha256 [0-9a-f]{64}, "
        r"but the manifest expects [0-9a-f]{64}; refusing to load it",
        line,
    ), line


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU"])
def test_bad_device(iris_dir: Path, capsys: pytest.CaptureFixture[str], device: str) -> None:
    assert main(["--model_dir", str(iris_dir), "--device", device]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("predictor: error: bad settings: device: ")
    assert f"got {device!r}" in line


def test_bad_env_value(iris_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREDICTOR_MAX_BATCH_SIZE", "lots")
    assert main(["--model_dir", str(iris_dir)]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("predictor: error: bad settings: max_batch_size: ")


@pytest.mark.parametrize(
    ("flag", "value"), [("--max_batch_size", "0"), ("--max_queue_size", "0"), ("--max_latency_ms", "-1")]
)
def test_out_of_range_values(iris_dir: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    assert main(["--model_dir", str(iris_dir), flag, value]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"predictor: error: bad settings: {flag.removeprefix('--')}: ")
    assert "greater than or equal to" in line


def test_workers_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _settings().workers == 1
    monkeypatch.setenv("PREDICTOR_WORKERS", "4")
    assert _settings().workers == 4
    assert _settings("--workers", "2").workers == 2


def test_zero_workers(iris_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model_dir", str(iris_dir), "--workers", "0"]) == 2
    line = _one_error_line(capsys)
    assert line.startswith("predictor: error: bad settings: workers: ")
    assert "greater than or equal to 1" in line


def test_workers_with_a_bad_manifest_fail_before_starting_any(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model_dir", str(tmp_path), "--workers", "3", *free_ports()]) == 2
    assert _one_error_line(capsys) == f"predictor: error: no model.yaml in model directory '{tmp_path}'"


# ---- logging, auth and limit flags ----------------------------------------------------------------


def test_hardening_defaults_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = _settings()
    assert (settings.log_format, settings.log_level) == ("text", "info")
    assert settings.auth_token_file is None
    assert settings.max_body_bytes == 64 * 1024 * 1024
    monkeypatch.setenv("PREDICTOR_LOG_FORMAT", "json")
    monkeypatch.setenv("PREDICTOR_LOG_LEVEL", "debug")
    monkeypatch.setenv("PREDICTOR_AUTH_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.setenv("PREDICTOR_MAX_BODY_BYTES", "4096")
    settings = _settings()
    assert (settings.log_format, settings.log_level) == ("json", "debug")
    assert settings.auth_token_file == tmp_path / "token"
    assert settings.max_body_bytes == 4096
    flagged = _settings("--log_format", "text", "--max_body_bytes", "2048", "--auth_token_file", "/run/t")
    assert (flagged.log_format, flagged.max_body_bytes, flagged.auth_token_file) == ("text", 2048, Path("/run/t"))


def test_help_lists_the_hardening_flags() -> None:
    text = build_parser().format_help()
    for flag in ["--log_format", "--log_level", "--auth_token_file", "--max_body_bytes"]:
        assert re.search(rf"(^|\s){re.escape(flag)}\b", text), f"{flag} missing from --help"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [("PREDICTOR_LOG_FORMAT", "xml", "log_format"), ("PREDICTOR_MAX_BODY_BYTES", "100", "max_body_bytes")],
)
def test_bad_hardening_values(
    iris_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    field: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["--model_dir", str(iris_dir)]) == 2
    assert _one_error_line(capsys).startswith(f"predictor: error: bad settings: {field}: ")


def test_missing_token_file_fails_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "token"
    # The model directory does not exist either: the token file is checked first, before a slow model load.
    assert main(["--model_dir", str(tmp_path / "no-model"), "--auth_token_file", str(missing), *free_ports()]) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"predictor: error: --auth_token_file {missing}: ")
    assert "No such file" in line
