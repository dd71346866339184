"""Bad values fail `helm install` with a clear message; values.yaml, its schema and README agree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import pytest
import yaml

from tests.support.rendering import CHART_DIR, LINT_KUBE_VERSION, NAMESPACE, RELEASE, render

README_GENERATOR = CHART_DIR.parents[1] / "hack" / "gen-chart-readme.py"
STORAGE = {"model": {"storageUri": "s3://models/iris/v1"}}
CANARY_V2 = {"enabled": True, "storageUri": "s3://models/iris/v2"}
JWT = {"enabled": True, "jwtRules": [{"issuer": "https://issuer.example", "jwksUri": "https://issuer.example/k"}]}
GPU_REQUEST = {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}


def schema_error(case: str, values: dict[str, Any], message: str) -> Any:
    """values.schema.json rejects these: Helm reports the path and the constraint."""
    return pytest.param(values, helm_python.HelmValuesError, message, id=case)


def check_error(case: str, values: dict[str, Any], message: str) -> Any:
    """The chart's cross-value checks (`fail`) reject these with a VALUES VALIDATION message."""
    return pytest.param(values, helm_python.HelmRenderError, message, id=case)


BAD_VALUES = [
    schema_error(
        "wrong-type", {"autoscaling": {"minReplicas": "2"}}, "/autoscaling/minReplicas': got string, want integer"
    ),
    schema_error("wrong-type-bool", {"gpu": {"enabled": "yes"}}, "at '/gpu/enabled'"),
    schema_error("unknown-top-level-key", {"replicaCount": 2}, "additional properties 'replicaCount' not allowed"),
    schema_error("unknown-nested-key", {"predictor": {"resorces": {}}}, "additional properties 'resorces' not allowed"),
    schema_error("old-mode-name", {"deploymentMode": "Serverless"}, "at '/deploymentMode'"),
    schema_error(
        "canary-percent-over-100", {"canary": {"standard": {"trafficPercent": 101}}}, "maximum: got 101, want 100"
    ),
    schema_error(
        "knative-canary-over-100", {"canary": {"knative": {"trafficPercent": 150}}}, "maximum: got 150, want 100"
    ),
    schema_error("missing-limits", {"predictor": {"resources": {"limits": None}}}, "missing property 'limits'"),
    schema_error("bad-digest", {"image": {"digest": "latest"}}, "at '/image/digest'"),
    schema_error("no-workers", {"predictor": {"workers": 0}}, "minimum: got 0, want 1"),
    schema_error("bad-name", {"fullnameOverride": "Iris_Model"}, "at '/fullnameOverride'"),
    check_error(
        "gpu-knative-without-feature-flags",
        {"deploymentMode": "Knative", "gpu": {"enabled": True}},
        "kubernetes.podspec-nodeselector",
    ),
    check_error("gpu-with-cpu-device", {"gpu": {"enabled": True}, "predictor": {"device": "cpu"}}, "reserves a GPU"),
    check_error("cuda-device-without-gpu", {"predictor": {"device": "cuda:0"}}, "predictor.device=cuda:0 needs a GPU"),
    check_error("gpu-in-requests", {"predictor": {"resources": {"requests": GPU_REQUEST}}}, "GPUs go in limits only"),
    check_error(
        "knative-canary-in-standard-mode",
        {"canary": {"knative": {"enabled": True}}},
        "silently ignored by KServe in Standard mode",
    ),
    check_error(
        "standard-canary-in-knative-mode",
        {"deploymentMode": "Knative", "canary": {"standard": {"enabled": True}}},
        "only supported in Standard mode",
    ),
    check_error(
        "standard-canary-without-predictor-name",
        {**STORAGE, "canary": {"standard": {"enabled": True, "storageUri": "s3://models/iris/v2"}}},
        "canary.standard needs predictor.name",
    ),
    check_error(
        "standard-canary-from-baked-model",
        {"predictor": {"name": "v1"}, "canary": {"standard": {"enabled": True, "image": {"tag": "0.2.0"}}}},
        "canary.standard needs model.storageUri",
    ),
    check_error(
        "standard-canary-identical-to-stable",
        {**STORAGE, "predictor": {"name": "v1"}, "canary": {"standard": {"enabled": True}}},
        "same image and model as the stable predictor",
    ),
    check_error(
        "standard-canary-too-many-replicas",
        {**STORAGE, "predictor": {"name": "v1"}, "canary": {"standard": {**CANARY_V2, "replicas": 3}}},
        "must not exceed autoscaling.minReplicas=1",
    ),
    check_error("hpa-on-rps", {"autoscaling": {"metric": "rps"}}, "autoscaling.metric=rps needs KEDA in Standard mode"),
    check_error("kpa-in-standard-mode", {"autoscaling": {"class": "kpa"}}, "kpa (the Knative Pod Autoscaler) needs"),
    check_error(
        "hpa-in-knative-mode",
        {"deploymentMode": "Knative", "autoscaling": {"class": "hpa"}},
        "does not apply in Knative mode",
    ),
    check_error(
        "kpa-on-cpu",
        {"deploymentMode": "Knative", "autoscaling": {"metric": "cpu"}},
        "autoscaling.metric=cpu is not supported by autoscaling.class=kpa",
    ),
    check_error("utilization-over-100", {"autoscaling": {"target": 150}}, "utilization percentage"),
    check_error(
        "min-above-max",
        {"autoscaling": {"minReplicas": 4, "maxReplicas": 2}},
        "autoscaling.maxReplicas=2 must not be below autoscaling.minReplicas=4",
    ),
    check_error("scale-to-zero-with-hpa", {"autoscaling": {"minReplicas": 0}}, "scale to zero"),
    check_error(
        "behavior-without-hpa",
        {"autoscaling": {"class": "none", "behavior": {"scaleDown": {}}}},
        "autoscaling.behavior",
    ),
    check_error(
        "container-concurrency-in-standard-mode",
        {"autoscaling": {"knative": {"containerConcurrency": 8}}},
        "containerConcurrency only works in Knative mode",
    ),
    check_error(
        "grpc-port-in-knative-mode",
        {"deploymentMode": "Knative", "predictor": {"grpc": {"expose": True}}},
        "Knative allows a single port",
    ),
    check_error(
        "deployment-strategy-in-knative-mode",
        {"deploymentMode": "Knative", "predictor": {"deploymentStrategy": {"type": "Recreate"}}},
        "deploymentStrategy is for Standard mode only",
    ),
    check_error("pdb-min-and-max", {"pdb": {"minAvailable": 1}}, "either pdb.minAvailable or pdb.maxUnavailable"),
    check_error("blocked-env", {"predictor": {"extraEnv": [{"name": "PYTHONPATH", "value": "/x"}]}}, "PYTHONPATH"),
    check_error(
        "controller-without-analysis", {"canaryController": {"enabled": True}}, "canaryAnalysis.enabled is false"
    ),
    check_error(
        "analysis-without-service-monitor",
        {"predictor": {"name": "v1"}, "canaryAnalysis": {"enabled": True}},
        "enable metrics.serviceMonitor, or set canaryAnalysis.spec.canarySelector",
    ),
    check_error(
        "standard-analysis-without-predictor-name",
        {"canaryAnalysis": {"enabled": True}, "metrics": {"serviceMonitor": {"enabled": True}}},
        "canaryAnalysis in Standard mode needs predictor.name",
    ),
    schema_error(
        "analysis-weight-over-100", {"canaryAnalysis": {"spec": {"steps": [10, 150]}}}, "maximum: got 150, want 100"
    ),
    schema_error(
        "analysis-typo", {"canaryAnalysis": {"spec": {"stepWeights": [10]}}}, "additional properties 'stepWeights'"
    ),
    schema_error(
        "analysis-p99-zero",
        {"canaryAnalysis": {"spec": {"maxP99Ms": 0}}},
        "at '/canaryAnalysis/spec/maxP99Ms'",
    ),
    schema_error(
        "analysis-bad-webhook-type",
        {"canaryAnalysis": {"spec": {"webhooks": [{"name": "a", "type": "post-rollout", "url": "http://a"}]}}},
        "at '/canaryAnalysis/spec/webhooks/0/type'",
    ),
    schema_error(
        "controller-bad-prometheus-url",
        {"canaryController": {"prometheusUrl": "prometheus:9090"}},
        "at '/canaryController/prometheusUrl'",
    ),
    # logging, limits, the token Secret, payload logging, Istio (issue 9)
    schema_error("log-format", {"predictor": {"logFormat": "xml"}}, "at '/predictor/logFormat'"),
    schema_error("tiny-body-limit", {"predictor": {"maxBodyBytes": 10}}, "minimum: got 10, want 1,024"),
    schema_error("payload-mode", {"payloadLogging": {"mode": "both"}}, "at '/payloadLogging/mode'"),
    schema_error("payload-url", {"payloadLogging": {"url": "broker.default"}}, "at '/payloadLogging/url'"),
    schema_error(
        "logger-typo", {"payloadLogging": {"metadataHeader": ["x"]}}, "additional properties 'metadataHeader'"
    ),
    schema_error(
        "claim-without-values",
        {"istio": {"authorizationPolicy": {"claims": [{"claim": "groups"}]}}},
        "missing property 'values'",
    ),
    schema_error(
        "jwt-rule-typo",
        {"istio": {"requestAuthentication": {"jwtRules": [{"issuer": "i", "jwks_uri": "https://k"}]}}},
        "additional properties 'jwks_uri'",
    ),
    schema_error(
        "secret-name", {"auth": {"token": {"existingSecret": "Not_A_Name"}}}, "at '/auth/token/existingSecret'"
    ),
    check_error("token-without-tokens", {"auth": {"token": {"enabled": True}}}, "auth.token.enabled needs the tokens"),
    check_error(
        "token-from-both",
        {"auth": {"token": {"enabled": True, "existingSecret": "s", "value": "t"}}},
        "not both: the chart does not write into an existing Secret",
    ),
    check_error(
        "policy-admitting-nobody",
        {"istio": {"authorizationPolicy": {"enabled": True}}},
        "allows only health, readiness and /metrics until you name who may call",
    ),
    check_error(
        "claims-without-jwt-validation",
        {"istio": {"authorizationPolicy": {"enabled": True, "claims": [{"claim": "groups", "values": ["a"]}]}}},
        "match validated JWTs only: enable istio.requestAuthentication",
    ),
    check_error(
        "jwt-without-rules",
        {"istio": {"requestAuthentication": {"enabled": True}}},
        "istio.requestAuthentication.enabled needs istio.requestAuthentication.jwtRules",
    ),
    check_error(
        "static-token-and-jwt",
        {"auth": {"token": {"enabled": True, "value": "t"}}, "istio": {"requestAuthentication": JWT}},
        "both read the Authorization header",
    ),
]


@pytest.mark.parametrize(("values", "error", "message"), BAD_VALUES)
def test_bad_values_fail_install_with_a_clear_message(
    chart: helm_python.Chart, values: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        render(chart, values)
    assert message in str(raised.value)


def test_every_problem_is_reported_at_once(chart: helm_python.Chart) -> None:
    values = {"canary": {"knative": {"enabled": True}}, "predictor": {"device": "cuda"}}
    with pytest.raises(helm_python.HelmRenderError) as raised:
        render(chart, values)
    text = str(raised.value)
    assert "VALUES VALIDATION" in text
    assert "canary.knative" in text and "needs a GPU" in text


def test_lint_reports_bad_values_as_errors() -> None:
    report = helm_python.lint(
        CHART_DIR, {"canary": {"standard": {"trafficPercent": 150}}}, strict=True, kube_version=LINT_KUBE_VERSION
    )
    assert any("maximum: got 150, want 100" in error for error in report["errors"])


def test_release_name_that_is_not_a_dns_label_fails(chart: helm_python.Chart) -> None:
    with pytest.raises(helm_python.HelmRenderError, match="must be a DNS-1035 label"):
        chart.render({}, name="9lives", namespace=NAMESPACE)


# --- values.yaml, values.schema.json and README agree ------------------------------------------


def schema_objects(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        if "properties" in node:
            found.append((path, node))
        for key, value in node.items():
            found.extend(schema_objects(value, f"{path}.{key}"))
    return found


def test_values_schema_rejects_unknown_keys_everywhere() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    open_objects = [path for path, node in schema_objects(schema) if node.get("additionalProperties") is not False]
    assert not open_objects, f"schema objects that accept unknown keys: {open_objects}"


def test_defaults_and_scenarios_match_the_schema() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert not list(validator.iter_errors(defaults))
    for path in sorted((CHART_DIR / "ci").glob("*-values.yaml")):
        with helm_python.Chart.load(CHART_DIR) as chart:
            merged = chart.merge_values(yaml.safe_load(path.read_text()) or {})
        errors = [error.message for error in validator.iter_errors(merged)]
        assert not errors, f"{path.name}: {errors}"


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(README_GENERATOR), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_readme_values_table_is_current() -> None:
    result = run_generator("--check")
    assert result.returncode == 0, result.stderr


def copy_chart(tmp_path: Path) -> Path:
    target = tmp_path / "servekit"
    shutil.copytree(CHART_DIR, target)
    return target


def test_readme_check_fails_when_the_table_is_stale(tmp_path: Path) -> None:
    chart_dir = copy_chart(tmp_path)
    values = chart_dir / "values.yaml"
    values.write_text(values.read_text().replace("Predictor image repository", "Where the image lives"))
    result = run_generator("--check", "--chart", str(chart_dir))
    assert result.returncode == 1
    assert "is stale; run hack/gen-chart-readme.py" in result.stderr
    assert "+| `image.repository` | Where the image lives" in result.stderr


def test_readme_generator_refuses_undocumented_values(tmp_path: Path) -> None:
    chart_dir = copy_chart(tmp_path)
    values = chart_dir / "values.yaml"
    values.write_text(values.read_text() + "\nundocumented:\n  knob: 1\n")
    result = run_generator("--chart", str(chart_dir))
    assert result.returncode == 2
    assert "undocumented.knob: no `## @param` documents it" in result.stderr


def test_rendered_release_uses_the_release_name(chart: helm_python.Chart) -> None:
    rendered = render(chart)
    assert {obj["metadata"]["labels"]["app.kubernetes.io/instance"] for obj in rendered.objects} == {RELEASE}
