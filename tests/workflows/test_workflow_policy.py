"""The rules every workflow keeps: actions pinned by commit SHA, least-privilege permissions with
`id-token: write` only where cosign signs, concurrency groups, timeouts, no template expansion inside
`run:` scripts, and tool versions that match the hack/ scripts' pins."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.workflows.workflow_files import (
    DEPENDABOT_FILE,
    FULL_SHA,
    REPO_ROOT,
    TAG,
    Step,
    all_steps,
    jobs,
    load_workflow,
    steps,
    uses_pins,
    workflow_paths,
)

WORKFLOWS = workflow_paths()
# GitHub-hosted runners stop a job after 6 hours.
MAX_TIMEOUT_MINUTES = 360
WRITE_SCOPES_NEEDED_BY = {
    # scope: what a job must do to be given write access to it
    "id-token": "signs with cosign keyless",
    "packages": "pushes an image or a chart",
    "contents": "creates the GitHub release",
}


def workflow_id(path: Path) -> str:
    return path.name


def hack_pin(script: str, name: str) -> str:
    match = re.search(rf'^readonly {name}="([^"]+)"$', (REPO_ROOT / "hack" / script).read_text(), re.MULTILINE)
    assert match, f"hack/{script} does not pin {name}"
    return match[1]


def job_steps(path: Path, job_id: str) -> list[Step]:
    return [step for step in steps(path) if step.job == job_id]


def job_does(path: Path, job_id: str, scope: str) -> bool:
    """Whether the job does what write access to SCOPE is for."""
    runs = " ".join(step.run or "" for step in job_steps(path, job_id))
    uses = [step.uses or "" for step in job_steps(path, job_id)]
    if scope == "id-token":
        return "cosign sign" in runs and any(u.startswith("sigstore/cosign-installer@") for u in uses)
    if scope == "packages":
        pushes_image = any(
            (s.uses or "").startswith("docker/build-push-action@") and s.data.get("with", {}).get("push") is True
            for s in job_steps(path, job_id)
        )
        return pushes_image or "helm push" in runs
    if scope == "contents":
        return "gh release create" in runs
    raise AssertionError(f"no rule for write access to {scope!r}")


# --------------------------------------------------------------------------- pinned actions


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_id)
def test_every_action_is_pinned_to_a_commit_sha_with_its_tag(path: Path) -> None:
    pins = uses_pins(path)
    parsed = [step.uses for step in steps(path) if step.uses]
    assert len(pins) == len(parsed), f"{path.name}: a `uses:` line the pin check did not read"
    for pin in pins:
        where = f"{path.name}:{pin.line} {pin.action}"
        assert FULL_SHA.fullmatch(pin.ref), f"{where}: @{pin.ref} is not a full 40-hex commit SHA"
        assert pin.comment and TAG.fullmatch(pin.comment), f"{where}: needs the tag as a comment, e.g. '# v1.2.3'"


def test_one_action_one_commit_one_tag() -> None:
    """The same action is pinned alike everywhere: a bump changes every workflow at once."""
    seen: dict[str, tuple[str, str | None, str]] = {}
    for path in WORKFLOWS:
        for pin in uses_pins(path):
            first = seen.setdefault(pin.action, (pin.ref, pin.comment, f"{path.name}:{pin.line}"))
            assert (pin.ref, pin.comment) == first[:2], f"{path.name}:{pin.line} {pin.action} differs from {first[2]}"


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_id)
def test_top_level_permissions_are_read_only(path: Path) -> None:
    workflow = load_workflow(path)
    assert "permissions" in workflow, f"{path.name}: set `permissions:` at the top (least privilege)"
    permissions = workflow["permissions"]
    assert isinstance(permissions, dict), f"{path.name}: top-level permissions {permissions!r} must be a mapping"
    assert set(permissions.values()) <= {"read", "none"}, f"{path.name}: write access at the top: {permissions}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_id)
def test_write_access_only_where_a_job_needs_it(path: Path) -> None:
    for job_id, job in jobs(path).items():
        permissions: dict[str, Any] = job.get("permissions") or {}
        assert isinstance(permissions, dict), f"{path.name}:{job_id}: permissions {permissions!r} must be a mapping"
        for scope, access in permissions.items():
            if access == "write":
                need = WRITE_SCOPES_NEEDED_BY.get(scope, "(no reason known for it)")
                assert job_does(path, job_id, scope), f"{path.name}:{job_id}: {scope}: write, but it never {need}"


def test_every_cosign_signing_job_has_an_oidc_token() -> None:
    signing = [
        (path.name, job_id)
        for path in WORKFLOWS
        for job_id in jobs(path)
        if "cosign sign" in " ".join(step.run or "" for step in job_steps(path, job_id))
    ]
    assert signing, "release.yml signs the images and the chart"
    for name, job_id in signing:
        job = jobs(next(p for p in WORKFLOWS if p.name == name))[job_id]
        assert (job.get("permissions") or {}).get("id-token") == "write", f"{name}:{job_id} signs without id-token"


# --------------------------------------------------------------------------- concurrency, timeouts


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_id)
def test_concurrency_group_at_the_top(path: Path) -> None:
    concurrency = load_workflow(path).get("concurrency")
    assert isinstance(concurrency, dict), f"{path.name}: needs `concurrency: {{group: ..., cancel-in-progress: ...}}`"
    assert "${{" in concurrency["group"], f"{path.name}: a fixed group would serialise unrelated runs"
    assert "cancel-in-progress" in concurrency


@pytest.mark.parametrize("name", ["release.yml", "model-release.yml", "e2e.yml"])
def test_a_rollout_or_release_is_never_cancelled_halfway(name: str) -> None:
    assert load_workflow(REPO_ROOT / ".github" / "workflows" / name)["concurrency"]["cancel-in-progress"] is False


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_id)
def test_every_job_has_a_timeout(path: Path) -> None:
    for job_id, job in jobs(path).items():
        minutes = job.get("timeout-minutes")
        assert isinstance(minutes, int), f"{path.name}:{job_id}: needs timeout-minutes (got {minutes!r})"
        assert 0 < minutes <= MAX_TIMEOUT_MINUTES, f"{path.name}:{job_id}: timeout-minutes {minutes}"


def test_ci_fits_in_the_ci_budget() -> None:
    """.ci/run must finish within 90 minutes; the GitHub job gives it no more."""
    assert jobs(REPO_ROOT / ".github" / "workflows" / "ci.yml")["test"]["timeout-minutes"] <= 90


# --------------------------------------------------------------------------- hygiene


@pytest.mark.parametrize("path", WORKFLOWS, ids=workflow_id)
def test_runners_are_pinned(path: Path) -> None:
    for job_id, job in jobs(path).items():
        assert not str(job["runs-on"]).endswith("-latest"), f"{path.name}:{job_id}: runs-on {job['runs-on']}"


def test_no_template_expansion_inside_run_scripts() -> None:
    """Inputs and event data reach scripts through `env:`, never spliced into the script text."""
    for step in all_steps():
        if step.run is not None:
            assert "${{" not in step.run, f"{step.label}: use env: for ${{{{ }}}} values in run scripts"


def test_checkouts_do_not_keep_the_token() -> None:
    for step in all_steps():
        if (step.uses or "").startswith("actions/checkout@"):
            assert step.data.get("with", {}).get("persist-credentials") is False, step.label


# --------------------------------------------------------------------------- versions agree


def with_of(name: str, action: str) -> dict[str, Any]:
    (step,) = [s for s in steps(REPO_ROOT / ".github" / "workflows" / name) if (s.uses or "").startswith(action + "@")]
    return dict(step.data.get("with", {}))


def test_e2e_installs_the_kind_and_kubectl_that_kind_up_pins() -> None:
    kind = with_of("e2e.yml", "helm/kind-action")
    assert kind["version"] == hack_pin("kind-up.sh", "KIND_VERSION")
    node_image = hack_pin("kind-up.sh", "KIND_NODE_IMAGE")
    assert kind["kubectl_version"] == re.search(r":(v[\d.]+)@", node_image)[1]  # type: ignore[index]
    assert kind["install_only"] is True, "hack/e2e.sh creates the cluster itself"


def test_helm_is_the_version_deploy_sh_pins() -> None:
    helm = hack_pin("deploy.sh", "HELM_VERSION")
    assert with_of("e2e.yml", "azure/setup-helm")["version"] == helm
    release = load_workflow(REPO_ROOT / ".github" / "workflows" / "release.yml")
    assert release["env"]["HELM_VERSION"] == helm


def test_python_is_the_version_the_project_is_built_for() -> None:
    project_python = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["python_version"]
    for name in ("ci.yml", "model-release.yml"):
        assert with_of(name, "actions/setup-python")["python-version"] == project_python
    assert f"FROM python:{project_python}-slim" in (REPO_ROOT / "Dockerfile").read_text()


def test_released_chart_points_at_the_released_image() -> None:
    """release.yml rewrites exactly these lines of values.yaml before `helm package`."""
    values = (REPO_ROOT / "helm" / "servekit" / "values.yaml").read_text().splitlines()
    assert values.count("  repository: servekit/predictor") == 1
    assert values.count("    repository: servekit/canary-controller") == 1
    loaded = yaml.safe_load("\n".join(values))
    assert loaded["image"]["repository"] == "servekit/predictor"
    assert loaded["canaryController"]["image"]["repository"] == "servekit/canary-controller"
    release = (REPO_ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "|    repository: ${CONTROLLER_IMAGE}|" in release, "the controller's line is rewritten too"


def test_the_release_builds_the_controller_target() -> None:
    """The chart's canaryController.image must exist once released: release.yml builds the
    Dockerfile's `controller` stage beside the predictor variants."""
    workflow = load_workflow(REPO_ROOT / ".github" / "workflows" / "release.yml")
    matrix = workflow["jobs"]["image"]["strategy"]["matrix"]["include"]
    targets = {entry["variant"]: entry["target"] for entry in matrix}
    assert targets == {"cpu": "runtime", "cuda": "runtime", "controller": "controller"}
    stages = re.findall(r"^FROM \S+ AS (\S+)$", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert {"runtime", "controller"} <= set(stages), stages


# --------------------------------------------------------------------------- dependabot


def test_dependabot_watches_pip_actions_and_the_base_image() -> None:
    config = yaml.safe_load(DEPENDABOT_FILE.read_text())
    assert config["version"] == 2
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(updates) == {"pip", "github-actions", "docker"}
    for update in updates.values():
        assert update["directory"] == "/"
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}
    ignored_pip = {rule["dependency-name"] for rule in updates["pip"].get("ignore", [])}
    assert ignored_pip <= set(re.findall(r'"([A-Za-z0-9_.-]+)[=<>!~]', (REPO_ROOT / "pyproject.toml").read_text()))


def test_dependabot_can_read_the_dockerfiles_base_image() -> None:
    """Dependabot does not expand ARGs in FROM lines: the default base must be on a literal one."""
    from_lines = re.findall(r"^FROM\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    literal = [image for image in from_lines if "$" not in image]
    assert literal, f"every FROM line uses a build argument: {from_lines}"
    ignored = yaml.safe_load(DEPENDABOT_FILE.read_text())["updates"]
    docker = next(update for update in ignored if update["package-ecosystem"] == "docker")
    images = {image.split(":")[0] for image in literal}
    assert {rule["dependency-name"] for rule in docker.get("ignore", [])} <= images
