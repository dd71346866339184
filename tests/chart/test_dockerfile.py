"""The Dockerfile (the predictor and the canary controller targets) agrees with the package, the chart and
the manifests (docker cannot run here)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.k8s_checks import REPO_ROOT, env_of
from tests.support.rendering import CHART_DIR, MANIFESTS_DIR

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.arguments for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for arguments in self.all("ENV"):
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        (stage,) = [s for s in self.stages if s.name == name]
        return stage


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions per stage; line continuations joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword, arguments = keyword.upper(), arguments.strip()
        if keyword == "FROM":
            words = arguments.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif not stages and keyword == "ARG":
            key, _, default = arguments.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return Dockerfile(global_args, stages)


def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


def copy_sources(arguments: str) -> list[str] | None:
    """Build-context sources of a COPY/ADD, or None when it copies from another stage."""
    words = shlex.split(arguments)
    if any(word.startswith("--from=") for word in words):
        return None
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders wins."""
    prefixes = ["/".join(path.split("/")[: i + 1]) for i in range(len(path.split("/")))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def baked_model_dir(stage: Stage) -> str:
    for command in stage.all("RUN"):
        if match := re.search(r"-m predictor\.examples sklearn --out (\S+)", command):
            return match[1]
    raise AssertionError("no `python -m predictor.examples sklearn --out DIR` in the build stage")


def test_build_is_multi_stage_on_a_slim_base() -> None:
    parsed = dockerfile()
    build, final = parsed.stage("build"), parsed.final
    assert final.base == build.base == "${PYTHON_IMAGE}", "the virtualenv needs the same Python in both stages"
    # The default base is a stage on a literal FROM line: the one form Dependabot can update.
    default_base = parsed.stage(parsed.global_args["PYTHON_IMAGE"])
    assert re.fullmatch(r"python:3\.11-slim-\w+", default_base.base), default_base.base
    assert not default_base.instructions, "the base stage only names the image"
    assert all(copy_sources(arguments) is None for arguments in final.all("COPY")), "runtime copies only from build"
    assert not final.all("ADD")
    assert not [cmd for cmd in final.all("RUN") if "pip install" in cmd], "no installs in the runtime stage"


def test_entrypoint_runs_python_m_predictor() -> None:
    final = dockerfile().final
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m", "predictor"], "exec form, so signals reach the server"
    assert not final.all("CMD"), "CMD would become arguments of the predictor"
    assert final.env()["PATH"].startswith("/opt/venv/bin:"), "`python` must be the virtualenv's"
    assert (REPO_ROOT / "predictor" / "__main__.py").is_file()
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["servekit-predictor"] == "predictor.server.main:main"


def test_runs_as_the_numeric_non_root_user_the_chart_expects() -> None:
    (user,) = dockerfile().final.all("USER")
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER {user} must be numeric so runAsNonRoot can be verified"
    uid, _, gid = user.partition(":")
    assert int(uid) != 0 and int(gid or uid) != 0
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["predictor"]
    for context in (values["podSecurityContext"], values["containerSecurityContext"]):
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid or uid))


def test_copied_paths_exist_and_are_in_the_build_context() -> None:
    patterns = dockerignore_patterns()
    assert patterns[0] == "*", ".dockerignore should be an allow-list"
    sources = [src for stage in dockerfile().stages for args in stage.all("COPY") for src in copy_sources(args) or []]
    assert sources
    for source in sources:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not dockerignore_excludes(source, patterns), f"COPY {source}: excluded by .dockerignore"
    # The package's own files reach the build, caches do not.
    assert not dockerignore_excludes("predictor/server/main.py", patterns)
    assert dockerignore_excludes("predictor/__pycache__/model.cpython-311.pyc", patterns)
    assert dockerignore_excludes(".venv/bin/python", patterns)


def test_baked_model_is_where_the_chart_and_manifests_look() -> None:
    parsed = dockerfile()
    baked = baked_model_dir(parsed.stage("build"))
    assert (REPO_ROOT / "predictor" / "examples" / "__main__.py").is_file()
    assert any(baked.startswith(arguments.split()[-1]) for arguments in parsed.final.all("COPY")), "not copied"
    assert parsed.final.env()["PREDICTOR_MODEL_DIR"] == baked
    assert yaml.safe_load((CHART_DIR / "values.yaml").read_text())["model"]["bakedDir"] == baked
    base = yaml.safe_load((MANIFESTS_DIR / "base" / "inferenceservice.yaml").read_text())
    assert env_of(base["spec"]["predictor"]["containers"][0])["PREDICTOR_MODEL_DIR"] == baked


def install_variants(build: Stage) -> dict[str, list[str]]:
    """VARIANT -> the extras the build stage's `pip install` gives it."""
    (install,) = [cmd for cmd in build.all("RUN") if "pip install" in cmd]
    assert "${VARIANT}" in install
    variants = re.findall(r'(\w+)\)\s+extras="(?:\[([^]]*)\])?"', install)
    assert variants, install
    return {variant: [extra for extra in extras.split(",") if extra] for variant, extras in variants}


def test_cuda_variant_is_a_build_argument() -> None:
    build = dockerfile().stage("build")
    assert "VARIANT=cpu" in build.all("ARG")
    assert install_variants(build) == {"cpu": [], "cuda": ["torch"]}
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "torch" in extras


def test_the_predictor_image_carries_no_tool_extra() -> None:
    """kopf, rich, helm-python-sdk and boto3 come only with the canary and backup extras."""
    for variant, extras in install_variants(dockerfile().stage("build")).items():
        assert not {"canary", "backup"} & set(extras), f"VARIANT={variant} installs {extras}"


def test_the_controller_target_runs_servekit_canary_under_the_same_contract() -> None:
    parsed = dockerfile()
    controller, build = parsed.stage("controller"), parsed.stage("controller-build")
    assert controller.base == build.base == parsed.final.base == "${PYTHON_IMAGE}"
    (entrypoint,) = controller.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["servekit-canary"], "exec form, so signals reach kopf"
    assert not controller.all("CMD")
    assert controller.all("USER") == parsed.final.all("USER")
    assert controller.all("RUN") == [cmd for cmd in parsed.final.all("RUN") if "useradd" in cmd], "the same user"
    assert [shlex.split(arguments)[0] for arguments in controller.all("COPY")] == ["--from=controller-build"]
    env = controller.env()
    assert env["PATH"].startswith("/opt/venv/bin:") and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == env["TMPDIR"] == "/tmp"
    requirements, package = [cmd for cmd in build.all("RUN") if "pip install" in cmd]
    assert "controller-requirements.py pyproject.toml >requirements.txt" in requirements
    assert "pip install --requirement requirements.txt" in requirements
    assert package == "/opt/venv/bin/pip install --no-deps ."
    copied = [shlex.split(arguments)[0] for arguments in build.all("COPY")]
    assert copied.index("predictor") > copied.index("hack/image/controller-requirements.py"), (
        "the requirements layer must not depend on the code"
    )
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["servekit-canary"] == "predictor.canary.cli:main"


def test_the_controller_installs_the_canary_extra_without_kserve() -> None:
    script = REPO_ROOT / "hack" / "image" / "controller-requirements.py"
    result = subprocess.run(
        [sys.executable, str(script), str(REPO_ROOT / "pyproject.toml")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    base = pyproject["project"]["dependencies"]
    canary = pyproject["project"]["optional-dependencies"]["canary"]
    lines = result.stdout.splitlines()
    assert lines[len(lines) - len(canary) :] == canary, lines
    named = lines[: len(lines) - len(canary)]
    assert named and set(named) <= set(base), named
    names = {re.split(r"[<>=\[;]", line)[0] for line in lines}
    assert not {"kserve", "scikit-learn", "numpy", "torch"} & names, names


def test_the_controller_requirements_name_a_bad_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["pydantic>=2"]\n[project.optional-dependencies]\ncanary = ["kopf"]\n'
        '[tool.servekit.controller-image]\nbase-dependencies = ["pydantic", "PyYAML"]\n'
    )
    script = REPO_ROOT / "hack" / "image" / "controller-requirements.py"
    result = subprocess.run([sys.executable, str(script), str(pyproject)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "base-dependencies names ['PyYAML'], which project.dependencies lacks (it has ['pydantic'])" in result.stderr


def test_process_writes_only_under_tmp() -> None:
    env = dockerfile().final.env()
    for key in ("HOME", "TMPDIR", "MPLCONFIGDIR", "TORCHINDUCTOR_CACHE_DIR"):
        assert env[key] == "/tmp" or env[key].startswith("/tmp/"), key
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "no .pyc writes on a read-only root filesystem"


def test_exposed_ports_match_the_predictor_defaults() -> None:
    (ports,) = dockerfile().final.all("EXPOSE")
    assert ports.split() == ["8080", "8081"]
