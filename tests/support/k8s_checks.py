"""Checks for rendered Kubernetes objects, shared by the chart and the kustomize tests.

- Built-in kinds are validated strictly (unknown fields rejected) by kubernetes-validate against the
  schemas of one pinned Kubernetes version.
- InferenceService is validated against KServe's CRD schema, made strict: the CRD as served lets
  unknown fields through (the API server would prune them silently), so a typo like `minReplica`
  would pass a plain check. Our CanaryAnalysis is validated against its own CRD, made strict the same way.
- Every pod template (predictor, canary, jobs, test pods) is held to the "restricted" Pod Security
  Standard plus this project's rules: requests and limits, probes on the predictor's endpoints,
  GPUs in limits only, a writable /tmp.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.pins import read_versions

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.32.0"
CRD_DIR_ENV = "KSERVE_CRD_DIR"
ISVC_CRD_FILE = "serving.kserve.io_inferenceservices.yaml"
V2_REST_SPEC_FILE = "rest_predict_v2.yaml"
# The source; manifests/crd has a generated copy (hack/gen-manifests.py).
CANARY_CRD = REPO_ROOT / "helm" / "servekit" / "crds" / "canaryanalyses.servekit.dev.yaml"

PREDICTOR_CONTAINER = "kserve-container"
PREDICTOR_HTTP_PORT = 8080
LIVE_PATH = "/v2/health/live"
GPU_RESOURCE_SUFFIX = "/gpu"

# Kinds with no schema here; each has a dedicated consistency test instead.
KINDS_CHECKED_ELSEWHERE = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# ObjectMeta as this project writes it; the CRD leaves metadata to the API server (type: object).
STRICT_OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


class ReferenceMissing(Exception):
    """The KServe reference files are not where the tests look for them."""


def default_reference_dir() -> Path:
    """Where hack/fetch-kserve-crds.sh copies the pinned KServe release's files (from its Go module)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "servekit" / f"kserve-{read_versions()['KSERVE_VERSION']}"


def kserve_reference_dir() -> Path:
    """The folder with KServe's CRD: $KSERVE_CRD_DIR (relative paths: from the repo root), else
    hack/fetch-kserve-crds.sh's default."""
    configured = os.environ.get(CRD_DIR_ENV)
    if not configured:
        return default_reference_dir()
    path = Path(configured)
    return path if path.is_absolute() else (REPO_ROOT / path).resolve()


def load_reference(name: str, directory: Path | None = None) -> Any:
    """A parsed KServe reference file (the CRD, the v2 REST OpenAPI); treat it as read-only."""
    return _load_yaml((directory or kserve_reference_dir()) / name)


@functools.cache
def _load_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ReferenceMissing(
            f"{path} not found: run hack/fetch-kserve-crds.sh (`make test` does), which copies it from the "
            f"pinned KServe release's Go module, or set {CRD_DIR_ENV} to a folder with KServe's {path.name}"
        )
    # The CRD is 39k lines: the C loader parses it in a fraction of the pure-Python time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)


def make_strict(schema: Any) -> Any:
    """A copy of an OpenAPI schema that rejects unknown fields wherever it lists the known ones
    (`additionalProperties: false` where `properties` is given), except where the schema asks to
    keep unknown fields (`x-kubernetes-preserve-unknown-fields`)."""
    if not isinstance(schema, dict):
        return schema
    strict = dict(schema)
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if strict.get(bound) is True:  # OpenAPI v3's boolean form; JSON Schema (draft 6+) gives the limit
            strict[bound] = strict.pop(limit)
    if "properties" in strict:
        strict["properties"] = {name: make_strict(sub) for name, sub in strict["properties"].items()}
    for keyword in ("items", "additionalProperties", "not"):
        if isinstance(strict.get(keyword), dict):
            strict[keyword] = make_strict(strict[keyword])
    for keyword in ("allOf", "anyOf", "oneOf"):
        if keyword in strict:
            strict[keyword] = [make_strict(sub) for sub in strict[keyword]]
    preserve_unknown = strict.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in strict and "additionalProperties" not in strict and not preserve_unknown:
        strict["additionalProperties"] = False
    return strict


def isvc_schema(crd: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """The v1beta1 openAPIV3Schema of the InferenceService CRD, for the objects users write."""
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    schema["properties"].pop("status", None)
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"] = {"const": "serving.kserve.io/v1beta1"}
    schema["properties"]["kind"] = {"const": "InferenceService"}
    if not strict:
        return schema
    schema = make_strict(schema)
    schema["properties"]["metadata"] = STRICT_OBJECT_META
    return schema


def openapi_to_jsonschema(schema: Any) -> Any:
    """OpenAPI's ``nullable: true`` as JSON Schema's ``type: [T, "null"]`` (the rest is the same here)."""
    if isinstance(schema, list):
        return [openapi_to_jsonschema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: openapi_to_jsonschema(value) for key, value in schema.items() if key != "nullable"}
    if schema.get("nullable") and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


def canary_analysis_schema(crd: dict[str, Any] | None = None) -> dict[str, Any]:
    """Our CanaryAnalysis CRD's schema, made strict, with the object fields a manifest carries."""
    crd = crd or _load_yaml(CANARY_CRD)
    (version,) = crd["spec"]["versions"]
    schema = make_strict(openapi_to_jsonschema(copy.deepcopy(version["schema"]["openAPIV3Schema"])))
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version['name']}"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["properties"]["metadata"] = STRICT_OBJECT_META
    return schema


@dataclass
class ObjectValidator:
    """Validates one rendered object; returns readable problems, empty when valid."""

    isvc: jsonschema.Draft7Validator
    canary_analysis: jsonschema.Draft7Validator

    @classmethod
    def from_reference(cls, directory: Path | None = None) -> ObjectValidator:
        schema = isvc_schema(load_reference(ISVC_CRD_FILE, directory))
        return cls(jsonschema.Draft7Validator(schema), jsonschema.Draft7Validator(canary_analysis_schema()))

    def problems(self, obj: dict[str, Any]) -> list[str]:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        name = f"{kind}/{obj.get('metadata', {}).get('name')}"
        if (api_version, kind) in KINDS_CHECKED_ELSEWHERE:
            return []
        from tests.chart.istio_schemas import ISTIO_KINDS  # it builds on this module's metadata schema

        if (api_version, kind) in ISTIO_KINDS:
            validator = jsonschema.Draft7Validator(ISTIO_KINDS[(api_version, kind)])
            return [f"{name}: {error.message} at {error.json_path}" for error in validator.iter_errors(obj)]
        crd_validators = {"InferenceService": self.isvc, "CanaryAnalysis": self.canary_analysis}
        if kind in crd_validators:
            return [
                f"{name}: {error.message} at {error.json_path}"
                for error in sorted(crd_validators[kind].iter_errors(obj), key=lambda e: e.json_path)
            ]
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            return [f"{name}: {error.message} at {error.json_path}"]
        except kubernetes_validate.SchemaNotFoundError:
            return [f"{name}: no schema for {api_version} {kind} in Kubernetes {KUBERNETES_VERSION}"]
        return []


# --- pod templates -----------------------------------------------------------------------------


@dataclass
class PodTemplate:
    where: str
    spec: dict[str, Any]
    predictor: bool


def kserve_canary_predictor(stable: dict[str, Any], canary: dict[str, Any]) -> dict[str, Any]:
    """The predictor KServe runs for a Standard-mode canary: the stable spec with the canary's
    fields on top (maps merge, lists and scalars replace), autoscaling fields dropped."""

    def merge(base: Any, top: Any) -> Any:
        if isinstance(base, dict) and isinstance(top, dict):
            merged = dict(base)
            for key, value in top.items():
                merged[key] = merge(base.get(key), value)
            return merged
        return copy.deepcopy(top)

    effective = merge(stable, canary)
    for field in ("maxReplicas", "scaleTarget", "scaleMetric", "autoScaling", "canaryTrafficPercent"):
        effective.pop(field, None)
    return effective


def pod_templates(obj: dict[str, Any]) -> Iterator[PodTemplate]:
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec = obj.get("spec", {})
    if kind == "InferenceService":
        stable = spec["predictor"]
        yield PodTemplate(f"{name} predictor", stable, predictor=True)
        for canary in spec.get("canary", []):
            effective = kserve_canary_predictor(stable, canary["predictor"])
            yield PodTemplate(f"{name} canary {canary['predictor'].get('name')}", effective, predictor=True)
    elif kind == "Pod":
        yield PodTemplate(f"Pod/{name}", spec, predictor=False)
    elif kind == "CronJob":
        yield PodTemplate(f"CronJob/{name}", spec["jobTemplate"]["spec"]["template"]["spec"], predictor=False)
    elif kind in {"Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}:
        yield PodTemplate(f"{kind}/{name}", spec["template"]["spec"], predictor=False)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def pod_policy_problems(pod: PodTemplate) -> list[str]:
    spec = pod.spec
    problems = [f"{pod.where}: {field} is set" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    pod_security = spec.get("securityContext") or {}
    tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    if not containers:
        problems.append(f"{pod.where}: no containers")
    for container in containers:
        where = f"{pod.where} container {container.get('name')}"
        problems += [f"{where}: {p}" for p in container_problems(container, pod_security, tmp_volumes)]
        if pod.predictor and container.get("name") == PREDICTOR_CONTAINER:
            problems += [f"{where}: {p}" for p in predictor_probe_problems(container)]
        if pod.predictor and "PYTHONPATH" in env_of(container):
            problems.append(f"{where}: KServe's webhook rejects PYTHONPATH in InferenceService containers")
    return problems


def container_problems(container: dict[str, Any], pod_security: dict[str, Any], tmp_volumes: set[str]) -> list[str]:
    security = container.get("securityContext") or {}

    def effective(key: str) -> Any:
        return security.get(key, pod_security.get(key))

    problems = []
    if effective("runAsNonRoot") is not True:
        problems.append("runAsNonRoot is not true")
    if effective("runAsUser") == 0:
        problems.append("runAsUser is 0 (root)")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if security.get("privileged"):
        problems.append("privileged is true")
    capabilities = security.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("capabilities.drop does not contain ALL")
    if capabilities.get("add"):
        problems.append(f"capabilities.add is {capabilities['add']}")
    if (effective("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("seccompProfile is not RuntimeDefault")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")

    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        missing = {"cpu", "memory"} - set(resources.get(section) or {})
        if missing:
            problems.append(f"resources.{section} lacks {sorted(missing)}")
    gpu_requests = [key for key in resources.get("requests") or {} if key.endswith(GPU_RESOURCE_SUFFIX)]
    if gpu_requests:
        problems.append(f"GPU {gpu_requests} in requests: GPUs belong in limits only")

    tmp_mounts = [m for m in container.get("volumeMounts", []) if m.get("mountPath") == "/tmp"]
    if not any(m["name"] in tmp_volumes for m in tmp_mounts):
        problems.append("no emptyDir mounted at /tmp (the root filesystem is read-only)")
    return problems


def http_get(container: dict[str, Any], probe: str) -> dict[str, Any]:
    return (container.get(probe) or {}).get("httpGet") or {}


def predictor_probe_problems(container: dict[str, Any]) -> list[str]:
    model = env_of(container).get("PREDICTOR_MODEL_NAME")
    if not model:
        return ["PREDICTOR_MODEL_NAME is not set, so the readiness path cannot be checked"]
    expected = {
        "readinessProbe": f"/v2/models/{model}/ready",
        "livenessProbe": LIVE_PATH,
        "startupProbe": LIVE_PATH,
    }
    problems = []
    for probe, path in expected.items():
        action = http_get(container, probe)
        if action.get("path") != path:
            problems.append(f"{probe} path is {action.get('path')!r}, expected {path!r}")
        if action.get("port") != PREDICTOR_HTTP_PORT:
            problems.append(f"{probe} port is {action.get('port')!r}, expected {PREDICTOR_HTTP_PORT}")
    ports = [p.get("containerPort") for p in container.get("ports", [])]
    if not ports or ports[0] != PREDICTOR_HTTP_PORT:
        problems.append(f"first container port is {ports[:1]}, expected {PREDICTOR_HTTP_PORT} (KServe routes to it)")
    return problems


def predictor_containers(isvc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, container) for the kserve-container of the stable predictor and every canary."""
    for pod in pod_templates(isvc):
        for container in pod.spec.get("containers", []):
            if container.get("name") == PREDICTOR_CONTAINER:
                yield pod.where, container


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())
