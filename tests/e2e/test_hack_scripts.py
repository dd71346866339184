"""The hack/ scripts' contract, checked without a cluster: strict mode, `--help`, exit status 2 for a
bad command line, pinned versions, shellcheck. `--help` and flag errors run the scripts for real,
with docker, kind, kubectl and helm replaced by tripwires that fail the test when called."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import HACK_DIR, REPO_ROOT, hack_scripts, run_script
from tests.pins import read_versions
from tests.support import backups

SCRIPTS = hack_scripts()
EXPECTED = {
    "lib.sh",
    "kind-up.sh",
    "install-kserve.sh",
    "build-and-load.sh",
    "deploy.sh",
    "e2e.sh",
    "backup.sh",
    "restore.sh",
}
SEMVER = re.compile(r"v?\d+\.\d+\.\d+")
VERSION_ASSIGNMENT = re.compile(r'^(?:readonly\s+)?([A-Z][A-Z0-9_]*_VERSION)="?([^"\s]*)"?', re.MULTILINE)
TRIPWIRE_TOOLS = ("docker", "kind", "kubectl", "helm", "curl")


def script_id(script: Path) -> str:
    return script.name


@pytest.fixture
def tripwires(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with docker, kind, kubectl, helm and curl that record being called and fail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    called = tmp_path / "called"
    for tool in TRIPWIRE_TOOLS:
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{called}"\nexit 99\n')
        wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, called


def test_every_entry_point_is_there() -> None:
    assert {script.name for script in SCRIPTS} >= EXPECTED


@pytest.mark.parametrize("script", SCRIPTS, ids=script_id)
def test_runs_in_strict_mode_before_anything_else(script: Path) -> None:
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash", f"{script.name}: shebang is {lines[0]!r}"
    code = [line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
    assert code[0] == "set -euo pipefail", f"{script.name}: the first command is {code[0]!r}"


@pytest.mark.parametrize("script", SCRIPTS, ids=script_id)
def test_is_executable_in_git(script: Path) -> None:
    # The docs run them as `hack/NAME.sh` (e.g. `eval "$(hack/controlplane.sh up)"`), not through bash.
    listed = subprocess.run(
        ["git", "ls-files", "--stage", str(script.relative_to(REPO_ROOT))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip(f"{script.name}: not in a git checkout, or not tracked yet")
    mode = listed.stdout.split()[0]
    assert mode == "100755", f"{script.name} is mode {mode} in git, expected 100755 (chmod +x)"


@pytest.mark.parametrize("script", SCRIPTS, ids=script_id)
def test_help_prints_a_usage_line_without_any_tool(script: Path, tripwires: tuple[dict[str, str], Path]) -> None:
    env, called = tripwires
    for flag in ("--help", "-h"):
        result = run_script(script, flag, env=env)
        assert result.returncode == 0, f"{script.name} {flag}: exit {result.returncode}\n{result.stderr}"
        assert re.search(r"^Usage: ", result.stdout, re.MULTILINE), f"{script.name} {flag}:\n{result.stdout}"
        assert result.stderr == ""
    assert not called.exists(), f"{script.name} --help ran: {called.read_text()}"


@pytest.mark.parametrize("script", SCRIPTS, ids=script_id)
def test_help_documents_every_flag_the_script_accepts(script: Path) -> None:
    accepted = set()
    for line in script.read_text().splitlines():
        match = re.match(r"^\s*(-[-\w]+(?:\s*\|\s*-[-\w]+)*)\)", line)
        if match:
            accepted |= {flag.strip() for flag in match.group(1).split("|")}
    accepted -= {"-h", "--help"}  # how the help is asked for
    help_text = run_script(script, "--help").stdout
    undocumented = sorted(
        flag for flag in accepted if not re.search(rf"(?<![-\w]){re.escape(flag)}(?![-\w])", help_text)
    )
    assert not undocumented, f"{script.name} accepts {undocumented} but --help does not mention them"


@pytest.mark.parametrize("script", SCRIPTS, ids=script_id)
def test_unknown_flag_exits_2_with_a_message(script: Path, tripwires: tuple[dict[str, str], Path]) -> None:
    env, called = tripwires
    result = run_script(script, "--no-such-flag", env=env)
    assert result.returncode == 2, f"{script.name}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    assert "--no-such-flag" in result.stderr
    assert re.search(r"unknown (option|argument)", result.stderr), result.stderr
    assert "Usage: " in result.stderr
    assert not called.exists(), f"{script.name} ran {called.read_text()} before rejecting its flags"


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("kind-up.sh", ["--name"], "--name needs a value"),
        ("kind-up.sh", ["--name", "Bad_Name"], "must be lower-case"),
        ("install-kserve.sh", ["--timeout", "soon"], "--timeout must be a whole number"),
        ("build-and-load.sh", ["--variant", "tpu"], "--variant must be cpu or cuda"),
        ("build-and-load.sh", ["--image", "servekit/predictor"], "needs an explicit tag"),
        ("deploy.sh", ["--pull-policy", "Sometimes"], "--pull-policy must be"),
        ("deploy.sh", ["--kustomize", "--set", "a=b"], "--values and --set are Helm options"),
        ("deploy.sh", ["--values", "/no/such/values.yaml"], "does not exist"),
        ("deploy.sh", ["--kustomize", "--overlay", "overlays/nope"], "no kustomization.yaml"),
        ("e2e.sh", ["--name"], "--name needs a value"),
        ("backup.sh", [], "--namespace is required"),
        ("backup.sh", ["-n", "Bad_NS"], "--namespace 'Bad_NS' is not a namespace name"),
        ("backup.sh", ["-n", "models", "--model-store", "/mnt/models"], "is not URI_PREFIX=DIR"),
        ("backup.sh", ["-n", "models", "--model-store", "s3://m=/no/such/dir"], "/no/such/dir is not a directory"),
        ("backup.sh", ["-n", "models", "-o", "README.md"], "--output README.md already exists"),
        ("restore.sh", [], "BACKUP is required"),
        ("restore.sh", ["/no/such/backup.tar.gz"], "BACKUP /no/such/backup.tar.gz does not exist"),
        ("restore.sh", ["docs", "docs"], "unexpected argument 'docs': give one BACKUP"),
        ("restore.sh", ["docs", "--wait", "soon"], "--wait 'soon' is not a whole number of seconds"),
        ("restore.sh", ["docs", "-n", "Models"], "--namespace 'Models' is not a namespace name"),
        ("restore.sh", ["docs", "--model-store", "gs://models"], "is not URI_PREFIX=DIR"),
    ],
)
def test_bad_values_exit_2_with_the_problem_named(
    script: str, args: list[str], message: str, tripwires: tuple[dict[str, str], Path]
) -> None:
    env, called = tripwires
    result = run_script(HACK_DIR / script, *args, env=env)
    assert result.returncode == 2, f"{script} {args}: exit {result.returncode}\n{result.stderr}"
    assert message in result.stderr
    assert not called.exists()


@pytest.mark.parametrize("script", SCRIPTS, ids=script_id)
def test_versions_are_pinned(script: Path) -> None:
    text = script.read_text()
    assert not re.search(r"\blatest\b", text, re.IGNORECASE), f"{script.name} mentions 'latest'"
    for name, value in VERSION_ASSIGNMENT.findall(text):
        assert SEMVER.fullmatch(value), f"{script.name}: {name}={value!r} is not a pinned version"
    for url in re.findall(r"https://github\.com/\S+/releases/download/[^\s\"']+", text):
        assert re.search(r"\$\{[A-Z_]*VERSION\}|/v?\d+\.\d+\.\d+/", url), f"{script.name}: unpinned download {url}"
    assert not re.search(r"\|\s*(sudo\s+)?(ba)?sh\b", text), f"{script.name} pipes a download into a shell"


@pytest.mark.parametrize(
    ("script", "pins"),
    [
        ("kind-up.sh", {"KIND_VERSION": "v0.30.0"}),
        ("deploy.sh", {"HELM_VERSION": "v3.16.3"}),
    ],
)
def test_pins_match_the_design_and_sit_at_the_top(script: str, pins: dict[str, str]) -> None:
    text = (HACK_DIR / script).read_text()
    first_code = text.index("\nsource ")
    for name, version in pins.items():
        match = re.search(rf'^readonly {name}="{re.escape(version)}"$', text, re.MULTILINE)
        assert match, f"{script} does not pin {name}={version}"
        assert match.start() < first_code, f"{script}: {name} is not pinned at the top"


def test_kserve_pins_come_from_versions_env() -> None:
    """One KServe pin for kind and for the control plane the cluster tests run on."""
    pins = read_versions()
    assert pins["KSERVE_VERSION"] == "v0.20.0"
    assert pins["CERT_MANAGER_VERSION"] == "v1.17.0"
    for script in ("install-kserve.sh", "controlplane.sh"):
        text = (HACK_DIR / script).read_text()
        assert 'source "${SERVEKIT_ROOT}/hack/versions.env"' in text, f"{script} does not read hack/versions.env"
        assert not VERSION_ASSIGNMENT.search(text), f"{script} pins a version of its own"


def test_kind_node_image_is_pinned_by_digest() -> None:
    text = (HACK_DIR / "kind-up.sh").read_text()
    match = re.search(r'^readonly KIND_NODE_IMAGE="(kindest/node:v[\d.]+@sha256:[0-9a-f]{64})"$', text, re.MULTILINE)
    assert match, "kind-up.sh must pin its node image by tag and digest"


def test_kserve_is_installed_from_the_release_manifests() -> None:
    text = (HACK_DIR / "install-kserve.sh").read_text()
    for asset in ("kserve-crds.yaml", "kserve.yaml", "kserve-cluster-resources.yaml"):
        assert f"${{KSERVE_RELEASE}}/{asset}" in text
    assert "https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}" in text
    assert "apply --server-side" in text


FUNCTION_DEFINITION = re.compile(r"^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)", re.MULTILINE)


def defined_functions(script: Path) -> set[str]:
    return set(FUNCTION_DEFINITION.findall(script.read_text()))


def test_no_script_redefines_a_library_function() -> None:
    """A script that defined its own log() or isvc_condition_true() would silently change what the
    library's other functions do for it; the library offers settings instead (LOG_FD)."""
    library = set().union(*(defined_functions(part) for part in (HACK_DIR / "lib").glob("*.sh")))
    assert {"log", "die", "usage_error", "kube", "isvc_condition_true", "find_servekit_python"} <= library
    scripts = [script for script in SCRIPTS if script.name != "lib.sh"]
    scripts += sorted((HACK_DIR / "controlplane").glob("*.sh")) + sorted((HACK_DIR / "image").glob("*.sh"))
    redefined = {
        str(script.relative_to(REPO_ROOT)): sorted(defined_functions(script) & library)
        for script in scripts
        if defined_functions(script) & library
    }
    assert redefined == {}


def test_controlplane_progress_goes_to_stderr() -> None:
    """`eval "$(hack/controlplane.sh up)"` reads its stdout: the library's log() must not write there."""
    result = run_bash("source hack/lib.sh; LOG_FD=2; log progress")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "controlplane.sh: progress\n")
    assert re.search(r"^LOG_FD=2$", (HACK_DIR / "controlplane.sh").read_text(), re.MULTILINE)


def test_shellcheck_is_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
    # As `make lint` runs it: every script together (hack/controlplane.sh's parts included), so the
    # ones that source others follow them.
    scripts = [*SCRIPTS, *sorted((HACK_DIR / "lib").glob("*.sh")), *sorted((HACK_DIR / "controlplane").glob("*.sh"))]
    result = subprocess.run(
        [shellcheck, *(str(s.relative_to(REPO_ROOT)) for s in scripts)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- hack/controlplane.sh: what can be checked without building or starting it ------------------------

CONTROLPLANE_LIBS = "source hack/lib.sh; source hack/versions.env; source hack/controlplane/build.sh; "


def run_bash(snippet: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {snippet}"],
        cwd=REPO_ROOT,
        env={**os.environ, "SCRIPT_NAME": "controlplane.sh", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_controlplane_go_mods_require_what_versions_env_pins() -> None:
    result = run_bash(CONTROLPLANE_LIBS + 'for c in "${COMPONENTS[@]}"; do check_pins "$c"; done')
    assert result.returncode == 0, result.stderr


def test_controlplane_refuses_to_build_when_a_pin_and_a_go_mod_disagree() -> None:
    result = run_bash(CONTROLPLANE_LIBS + "KSERVE_VERSION=v0.19.0 check_pins kserve")
    assert result.returncode == 1
    assert (
        "hack/controlplane/kserve/go.mod requires github.com/kserve/kserve v0.20.0, "
        "hack/versions.env pins KSERVE_VERSION=v0.19.0"
    ) in result.stderr


def test_controlplane_without_go_says_what_to_install(tmp_path: Path) -> None:
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "go").exists())
    result = run_script(
        HACK_DIR / "controlplane.sh", "--state-dir", str(tmp_path / "state"), "build", env={"PATH": path}
    )
    assert result.returncode == 1
    assert "go is required to build the control plane" in result.stderr


def test_controlplane_status_of_a_control_plane_that_is_not_up(tmp_path: Path) -> None:
    result = run_script(HACK_DIR / "controlplane.sh", "--state-dir", str(tmp_path / "state"), "status")
    assert result.returncode == 1
    assert "the control plane is down" in result.stderr


def user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("not the control plane's")
    return folder


@pytest.mark.parametrize("command", ["up", "down"])
def test_controlplane_refuses_a_state_dir_that_is_a_users_folder(
    command: str, tmp_path: Path, tripwires: tuple[dict[str, str], Path]
) -> None:
    env, called = tripwires
    go = Path(env["PATH"].split(os.pathsep)[0]) / "go"  # `up` builds first: it must not get that far
    go.write_text(f'#!/bin/sh\necho "go $*" >> "{called}"\nexit 99\n')
    go.chmod(0o755)
    folder = user_folder(tmp_path)
    result = run_script(HACK_DIR / "controlplane.sh", "--state-dir", str(folder), command, env=env)
    assert result.returncode == 2, result.stderr
    assert (
        f"the state folder {folder} is not empty and holds no control plane (no ports.env, no pids/)"
    ) in result.stderr
    assert (folder / "notes.txt").read_text() == "not the control plane's"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert not called.exists(), f"controlplane.sh {command} ran {called.read_text()}"


def control_plane_leftovers(state: Path) -> None:
    """What a stopped `up` leaves: no process runs, so `down` only removes files."""
    for folder in ("pids", "logs", "pki", "etcd", "apiserver", "kserve/tmp", "s3/data", "coredns"):
        (state / folder).mkdir(parents=True)
    (state / "pids" / "etcd.pid").write_text("999999999 /no/such/etcd\n")
    (state / "logs" / "etcd.log").write_text("log\n")
    (state / "pki" / "ca.key").write_text("key\n")
    (state / "ports.env").write_text("ETCD_PORT=1\n")
    (state / "kubeconfig").write_text("apiVersion: v1\n")


def test_controlplane_down_removes_what_up_wrote_and_then_the_empty_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    control_plane_leftovers(state)
    result = run_script(HACK_DIR / "controlplane.sh", "--state-dir", str(state), "down")
    assert result.returncode == 0, result.stderr
    assert not state.exists()
    assert "the control plane is down" in result.stderr


def test_controlplane_down_keeps_files_it_did_not_write(tmp_path: Path) -> None:
    state = user_folder(tmp_path)
    control_plane_leftovers(state)
    result = run_script(HACK_DIR / "controlplane.sh", "--state-dir", str(state), "down")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]
    assert f"kept {state}: it holds files the control plane did not write" in result.stderr


def test_controlplane_state_dir_is_for_its_user_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    result = run_bash(
        "source hack/lib.sh; source hack/controlplane/processes.sh; umask 022; make_state_dir",
        env={"STATE_DIR": str(state)},
    )
    assert result.returncode == 0, result.stderr
    assert state.stat().st_mode & 0o777 == 0o700


def test_object_store_keys_are_written_for_their_user_only(tmp_path: Path) -> None:
    snippet = (
        "source hack/lib.sh; source hack/controlplane/processes.sh; source hack/controlplane/storage.sh; "
        'umask 022; mkdir -p "$STATE_DIR/s3"; make_s3_credentials'
    )
    result = run_bash(snippet, env={"STATE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    keys = tmp_path / "s3" / "credentials.env"
    assert keys.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in keys.read_text().splitlines())
    assert set(values) == {"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"}
    assert len(values["S3_SECRET_ACCESS_KEY"]) == 48


def test_controlplane_check_goes_with_build_only() -> None:
    result = run_script(HACK_DIR / "controlplane.sh", "--check", "up")
    assert result.returncode == 2
    assert "--check goes with build, not up" in result.stderr


# --- hack/backup.sh and hack/restore.sh: a backup that cannot be read is refused before any kubectl --

RESTORE = HACK_DIR / "restore.sh"


def restore_without_cluster(
    tripwires: tuple[dict[str, str], Path], *args: str, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    env, called = tripwires
    result = run_script(RESTORE, *args, env={**env, "SERVEKIT_PYTHON": python})
    assert not called.exists(), f"restore.sh ran {called.read_text()} before refusing the backup"
    return result


def test_restore_refuses_an_archive_that_is_not_a_tar_gz(
    tmp_path: Path, tripwires: tuple[dict[str, str], Path]
) -> None:
    archive = tmp_path / "backup.tar.gz"
    archive.write_bytes(b"not gzip at all")
    result = restore_without_cluster(tripwires, str(archive))
    assert result.returncode == 1
    assert f"restore.sh: error: cannot unpack {archive}: it is not a readable .tar.gz" in result.stderr


def test_restore_refuses_an_archive_without_an_index(tmp_path: Path, tripwires: tuple[dict[str, str], Path]) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    archive = tmp_path / "notes.tgz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(tmp_path), "notes"], check=True)
    result = restore_without_cluster(tripwires, str(archive))
    assert result.returncode == 1
    assert "holds 0 index.yaml files, expected 1: it is not an archive hack/backup.sh wrote" in result.stderr


def test_restore_refuses_a_folder_whose_files_do_not_match_its_index(
    tmp_path: Path, tripwires: tuple[dict[str, str], Path]
) -> None:
    index = {
        "apiVersion": "servekit.dev/v1alpha1",
        "kind": "Backup",
        "format": 1,
        "id": "models-20261126T093000Z",
        "objects": [{"kind": "InferenceService", "name": "iris", "file": "inferenceservices/iris.yaml"}],
        "helmReleases": [],
    }
    (tmp_path / "index.yaml").write_text(yaml.safe_dump(index))
    result = restore_without_cluster(tripwires, str(tmp_path))
    assert result.returncode == 1
    assert "restore.sh: error: InferenceService iris: inferenceservices/iris.yaml is missing" in result.stderr


def test_restore_without_a_python_that_has_servekit_says_what_to_install(
    tmp_path: Path, tripwires: tuple[dict[str, str], Path]
) -> None:
    result = restore_without_cluster(tripwires, str(tmp_path), python="/bin/false")
    assert result.returncode == 1
    assert "no Python with the servekit package (tried: /bin/false)" in result.stderr


# --- hack/restore.sh against a stand-in kubectl: a namespace that already holds objects -----------

# Twelve InferenceServices and two Helm release records in the target namespace; the backed-up
# "iris" is not among them.
OCCUPIED_KUBECTL = """#!/bin/sh
case "$*" in
  "config current-context") echo test ;;
  "version --request-timeout=10s") echo "Server Version: v1.34.0" ;;
  "get --raw /apis/serving.kserve.io/v1beta1") echo '{"resources":[{"name":"inferenceservices"}]}' ;;
  "get namespace models -o jsonpath="*) printf 'Active ' ;;
  "-n models get inferenceservices.serving.kserve.io -o name")
    for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "inferenceservice.serving.kserve.io/m$i"; done ;;
  "-n models get canaryanalyses.servekit.dev -o name" | "-n models get configmaps -l "*) ;;
  "-n models get secrets -l owner=helm -o name")
    sleep 0.5  # an API server takes a while to answer: a reader of only 10 lines is gone by now
    echo secret/sh.helm.release.v1.demo.v1; echo secret/sh.helm.release.v1.demo.v2 ;;
  "-n models get inferenceservices.serving.kserve.io iris -o json")
    echo 'Error from server (NotFound): inferenceservices.serving.kserve.io "iris" not found' >&2; exit 1 ;;
  *) echo "stand-in kubectl: unexpected: $*" >&2; exit 99 ;;
esac
"""


@pytest.fixture
def one_isvc_backup(tmp_path: Path) -> Path:
    """A backup of namespace models with one InferenceService, as hack/backup.sh writes it."""
    return backups.one_isvc_backup(tmp_path)


def restore_into_occupied_namespace(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "kubectl-bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(OCCUPIED_KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SERVEKIT_PYTHON": sys.executable}
    return run_script(RESTORE, *args, env=env)


def test_restore_names_the_first_ten_occupants_and_counts_the_rest(tmp_path: Path, one_isvc_backup: Path) -> None:
    result = restore_into_occupied_namespace(tmp_path, str(one_isvc_backup))
    assert result.returncode == 1, result.stderr
    listed = " ".join(f"inferenceservice.serving.kserve.io/m{i}" for i in range(1, 11))
    assert f"namespace models is not empty ({listed} and 4 more): restore into a new namespace" in result.stderr


def test_restore_with_force_goes_on_into_a_namespace_of_many_objects(tmp_path: Path, one_isvc_backup: Path) -> None:
    result = restore_into_occupied_namespace(tmp_path, str(one_isvc_backup), "--force", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "restore.sh: inferenceservices/iris: would be created" in result.stdout
    assert "restore.sh: dry run: nothing written" in result.stdout


@pytest.mark.parametrize("value", ["08", "010", "00"])
def test_restore_refuses_a_wait_with_a_leading_zero(value: str, tripwires: tuple[dict[str, str], Path]) -> None:
    # bash reads 08 as a bad octal number in [[ ... -gt 0 ]]: the wait would be skipped without a word.
    result = restore_without_cluster(tripwires, "docs", "--wait", value)
    assert result.returncode == 2
    assert f"--wait '{value}' is not a whole number of seconds (digits, no leading 0)" in result.stderr
