"""hack/image/: cache keys, command lines, the pause binary, and the exported images in containerd.

The fast tests need bash (and gcc for the pause binary). The container tests run the archives
`make image-archives` exports in a throwaway containerd (hack/image/verify.sh); they skip, saying
why, where there is no root, buildah, containerd or built image (`make images` builds them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = ROOT / "hack" / "image"

# The inputs of the predictor's and the canary controller's keys (hack/image/cache-key.sh's
# IMAGE_INPUTS), for a scratch copy.
PREDICTOR_INPUTS = [
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "README.md",
    "predictor",
    "hack/lib.sh",
    "hack/lib",
    "hack/image/cache-key.sh",
    "hack/image/build.sh",
    "hack/image/builder.sh",
    "hack/image/controller-requirements.py",
]


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------
# Cache keys


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A copy of the files the predictor's key reads, to change without touching the checkout."""
    for relative in PREDICTOR_INPUTS:
        source, target = ROOT / relative, tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return tmp_path


def predictor_key(repo: Path, *extra: str, image: str = "predictor") -> str:
    script = f'source hack/lib.sh && source hack/image/cache-key.sh && image_key {image} "$@"'
    result = run("bash", "-c", f"cd {repo} && {script}", "key", *extra)
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert len(key) == 16 and all(c in "0123456789abcdef" for c in key), key
    return key


def test_the_key_is_stable_and_changes_with_a_source(scratch_repo: Path) -> None:
    before = predictor_key(scratch_repo, "base-id-1")
    assert predictor_key(scratch_repo, "base-id-1") == before

    # Byte code is never part of a build context: it must not change the key.
    (scratch_repo / "predictor" / "__pycache__").mkdir(exist_ok=True)
    (scratch_repo / "predictor" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    assert predictor_key(scratch_repo, "base-id-1") == before

    model = scratch_repo / "predictor" / "server" / "model.py"
    model.write_text(model.read_text() + "\n# changed\n")
    after_source = predictor_key(scratch_repo, "base-id-1")
    assert after_source != before


@pytest.mark.parametrize("changed", ["Dockerfile", "pyproject.toml", "predictor/new_module.py"])
def test_every_input_is_in_the_key(scratch_repo: Path, changed: str) -> None:
    before = predictor_key(scratch_repo, "base")
    path = scratch_repo / changed
    path.write_text((path.read_text() if path.exists() else "") + "\n# changed\n")
    assert predictor_key(scratch_repo, "base") != before


def test_the_controller_key_follows_its_requirements_script(scratch_repo: Path) -> None:
    predictor = predictor_key(scratch_repo, "base")
    controller = predictor_key(scratch_repo, "base", image="canary-controller")
    assert predictor != controller, "two images from one Dockerfile keep their own keys"
    script = scratch_repo / "hack" / "image" / "controller-requirements.py"
    script.write_text(script.read_text() + "\n# changed\n")
    assert predictor_key(scratch_repo, "base", image="canary-controller") != controller
    assert predictor_key(scratch_repo, "base") == predictor, "the predictor target does not read the script"


def test_a_rebuilt_base_changes_the_key(scratch_repo: Path) -> None:
    assert predictor_key(scratch_repo, "sha256:aaa") != predictor_key(scratch_repo, "sha256:bbb")


def test_a_missing_input_is_an_error_not_a_silent_key(scratch_repo: Path) -> None:
    (scratch_repo / "pyproject.toml").unlink()
    script = "source hack/lib.sh && source hack/image/cache-key.sh && image_key predictor x"
    result = run("bash", "-c", f"cd {scratch_repo} && {script}")
    assert result.returncode != 0
    assert "cache key input pyproject.toml does not exist" in result.stderr


# ---------------------------------------------------------------------------------------------
# Command lines


@pytest.mark.parametrize("script", ["build.sh", "export.sh", "verify.sh", "install-tools.sh"])
def test_help(script: str) -> None:
    result = run(IMAGE_DIR / script, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: hack/image/{script}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build.sh"], "name at least one image"),
        (
            ["build.sh", "predicter"],
            "unknown image 'predicter': expected predictor, canary-controller, storage-initializer, pause",
        ),
        (["build.sh", "--fast", "predictor"], "unknown option: --fast"),
        (["export.sh", "servekit/predictor:dev"], "expected REF and FILE.tar, got 1 argument(s)"),
        (["export.sh", "servekit/predictor", "out.tar"], "REF 'servekit/predictor' is not NAME:TAG"),
        (["export.sh", "servekit/predictor:dev", "out.tgz"], "FILE 'out.tgz' must end in .tar"),
        (
            ["verify.sh", "kserve", "x.tar"],
            "unknown image 'kserve': expected predictor, canary-controller, storage-initializer or pause",
        ),
        (["verify.sh", "pause", "/nonexistent/pause.tar"], "no archive at '/nonexistent/pause.tar'"),
        (["install-tools.sh", "--yes"], "unknown option: --yes"),
    ],
)
def test_bad_arguments_name_the_problem(args: list[str], message: str) -> None:
    result = run(IMAGE_DIR / args[0], *args[1:])
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Usage:" in result.stderr


def test_the_storage_initializer_entrypoint_checks_its_arguments() -> None:
    script = IMAGE_DIR / "storage-initializer" / "initializer-entrypoint.py"
    # Run with this interpreter: the argument check answers before kserve_storage is imported.
    result = subprocess.run(
        ["python3", str(script), "s3://models/iris"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "expected pairs of SRC_URI DEST_PATH, got 1 argument(s): ['s3://models/iris']" in result.stderr


# ---------------------------------------------------------------------------------------------
# The pause binary


@pytest.fixture(scope="module")
def pause_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("no gcc: the pause binary is compiled with gcc -static (hack/image/install-tools.sh)")
    binary = tmp_path_factory.mktemp("pause") / "pause"
    result = run("gcc", "-static", "-Os", "-Wall", "-Wextra", "-Werror", "-o", binary, IMAGE_DIR / "pause.c")
    if result.returncode != 0 and "cannot find -lc" in result.stderr:
        pytest.skip("no static libc (libc6-dev) for gcc -static")
    assert result.returncode == 0, result.stderr
    return binary


def test_pause_exits_0_on_sigterm_and_sigint(pause_binary: Path) -> None:
    assert run(pause_binary, "--version").stdout.strip() == "pause 3.10-servekit"
    bad = run(pause_binary, "--forever")
    assert bad.returncode == 2 and "takes no arguments (got '--forever')" in bad.stderr
    for sig in (signal.SIGTERM, signal.SIGINT):
        process = subprocess.Popen([pause_binary])
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                process.wait(timeout=0.3)  # still paused: it does not exit on its own
            process.send_signal(sig)
            assert process.wait(timeout=5) == 0
        finally:
            process.kill()


def children_of(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def pause_as_pid_1(pause_binary: Path) -> Iterator[int]:
    """pause as PID 1 of a new PID namespace (as in a pod); yields its host PID."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs root, unshare and nsenter to make a PID namespace")
    holder = subprocess.Popen(["unshare", "--fork", "--pid", str(pause_binary)])
    try:
        wait_for(lambda: children_of(holder.pid), 5, "unshare to start pause")
        yield children_of(holder.pid)[0]
    finally:
        holder.kill()
        holder.wait(timeout=5)


def test_pause_reaps_orphans_in_its_pid_namespace(pause_as_pid_1: int) -> None:
    # A shell in pause's namespace starts `sleep` and exits at once: the orphaned sleep is
    # re-parented to pause, and when it ends only pause can reap it. (sleep's output goes to
    # /dev/null, else run() would wait for it to close our pipe.)
    orphan = "sleep 1 >/dev/null 2>&1 & exit 0"
    started = run("nsenter", "--target", str(pause_as_pid_1), "--pid", "--", "sh", "-c", orphan)
    assert started.returncode == 0, started.stderr
    wait_for(lambda: children_of(pause_as_pid_1), 2, "the orphan to be re-parented to pause")
    wait_for(lambda: not children_of(pause_as_pid_1), 5, "pause to reap the orphan (a zombie stays a child)")


# ---------------------------------------------------------------------------------------------
# The exported images in a throwaway containerd

IMAGES = {
    "predictor": "servekit/predictor:dev",
    "canary-controller": "servekit/canary-controller:dev",
    "storage-initializer": "servekit/storage-initializer:dev",
    "pause": "localhost/servekit/pause:3.10",
}


def image_cache() -> Path:
    if os.environ.get("SERVEKIT_IMAGE_CACHE"):
        return Path(os.environ["SERVEKIT_IMAGE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "servekit" / "images"


def exported_archive(image: str) -> Path:
    """The image's archive, exported now when the built image is newer; skips when not built."""
    if os.geteuid() != 0:
        pytest.skip("running containers with containerd needs root")
    missing = [tool for tool in ("buildah", "containerd", "ctr", "runc") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {', '.join(missing)} (hack/image/install-tools.sh installs them)")
    ref = IMAGES[image]
    local_ref = ref if ref.startswith("localhost/") else f"localhost/{ref}"
    if run("buildah", "inspect", "--type", "image", local_ref).returncode != 0:
        pytest.skip(f"{local_ref} is not built (make images)")
    archive = image_cache() / f"{image}.tar"
    exported = run(IMAGE_DIR / "export.sh", ref, archive, timeout=300)
    assert exported.returncode == 0, exported.stderr
    return archive


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (
            "predictor",
            [
                "ok: the image's user is '65532:65532'",
                "ok: python -m predictor serves /v2/health/ready with a read-only root filesystem",
                "ok: id -u in the container is '65532'",
                "ok: writing to / fails",
                "ok: writing to /tmp works",
                "ok: python -c 'import predictor' works",
            ],
        ),
        (
            "canary-controller",
            [
                "ok: the image's user is '65532:65532'",
                """ok: the image's entrypoint is '["servekit-canary"]'""",
                "ok: servekit-canary controller --help answers with a read-only root filesystem",
                "ok: id -u in the container is '65532'",
                "ok: the controller image has no kserve",
                "ok: the controller image has no sklearn",
            ],
        ),
        (
            "storage-initializer",
            [
                "ok: the image's user is '1000:1000'",
                "ok: without arguments it prints the usage",
                "ok: a bad URI fails naming it",
                "ok: s3:// goes to AWS_ENDPOINT_URL through boto3",
                "ok: a local folder is downloaded (copied) as the image's user",
            ],
        ),
        ("pause", ["ok: the image's user is '65535:65535'", "ok: pause's exit status after SIGTERM is '0'"]),
    ],
)
def test_exported_image_runs_in_containerd(image: str, expected: list[str]) -> None:
    archive = exported_archive(image)
    result = run(IMAGE_DIR / "verify.sh", image, archive, timeout=200)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    for line in expected:
        assert line in result.stdout, result.stdout
    # The name containerd gives the import is the one a pod's `image:` resolves to: REF with a
    # registry domain in front when REF has none (the CRI's normalization), REF itself otherwise.
    imported = next(line for line in result.stdout.splitlines() if line.startswith("ok: imported "))
    name = imported.rsplit(" as ", 1)[1].split(" (")[0]
    ref = IMAGES[image]
    if ref.startswith("localhost/"):
        assert name == ref
    else:
        domain, _, path = name.partition("/")
        assert path == ref and "." in domain, name
