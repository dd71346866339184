"""Render the chart for every ci/*-values.yaml scenario and check what a cluster would receive."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import pytest

from tests.support.k8s_checks import (
    V2_REST_SPEC_FILE,
    ObjectValidator,
    env_of,
    labels_match,
    load_reference,
    pod_policy_problems,
    pod_templates,
    predictor_containers,
)
from tests.support.rendering import (
    CHART_DIR,
    CI_VALUES,
    LINT_KUBE_VERSION,
    NAMESPACE,
    RELEASE,
    Rendered,
    ci_values,
    render,
)

RenderCi = Callable[[Path], Rendered]
SCENARIO_IDS = [path.name.removesuffix("-values.yaml") for path in CI_VALUES]
LINT_WARNING = 2

KNOWN_METRICS = {
    "servekit_requests_total",
    "servekit_request_duration_seconds",
    "servekit_batch_size",
    "servekit_queue_depth",
    "servekit_queue_rejections_total",
    "request_preprocess_seconds",
    "request_predict_seconds",
    "request_postprocess_seconds",
    "servekit_predictions_total",
    "servekit_prediction_probability",
    "servekit_input_drift",
    "servekit_live_accuracy",
    "servekit_feedback_total",
}


def scenario(name: str) -> Path:
    return CHART_DIR / "ci" / f"{name}-values.yaml"


def isvc(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("InferenceService")


def predictor(rendered: Rendered) -> dict[str, Any]:
    return isvc(rendered)["spec"]["predictor"]


def stable_container(rendered: Rendered) -> dict[str, Any]:
    return predictor(rendered)["containers"][0]


# --- every scenario ----------------------------------------------------------------------------


def test_ci_scenarios_cover_every_feature(render_ci: RenderCi) -> None:
    seen: set[str] = set()
    for path in CI_VALUES:
        rendered = render_ci(path)
        seen |= {obj["kind"] for obj in rendered.objects}
        service = isvc(rendered)
        annotations = service["metadata"]["annotations"]
        seen.add(annotations["serving.kserve.io/deploymentMode"])
        seen.add(annotations.get("serving.kserve.io/autoscalerClass", "kpa"))
        spec = service["spec"]
        seen |= {"knative-canary"} if "canaryTrafficPercent" in spec["predictor"] else set()
        seen |= {"standard-canary"} if "canary" in spec else set()
        seen |= {"gpu"} if "nvidia.com/gpu" in spec["predictor"]["containers"][0]["resources"]["limits"] else set()
        seen |= {"storage"} if "STORAGE_URI" in env_of(spec["predictor"]["containers"][0]) else set()
    wanted = {
        "Standard", "Knative", "hpa", "keda", "none", "kpa", "knative-canary", "standard-canary", "gpu", "storage",
        "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "Service", "ServiceMonitor", "ConfigMap",
        "Deployment", "CanaryAnalysis", "Role", "RoleBinding", "Pod",
    }  # fmt: skip
    assert wanted <= seen, f"no ci/*-values.yaml scenario renders {sorted(wanted - seen)}"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_chart_lints_strictly(values_file: Path) -> None:
    report = helm_python.lint(
        CHART_DIR, ci_values(values_file), strict=True, namespace=NAMESPACE, kube_version=LINT_KUBE_VERSION
    )
    findings = [m for m in report["messages"] if m["severity"] >= LINT_WARNING]
    assert not report["errors"] and not findings, f"helm lint --strict: {report}"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_rendered_objects_are_valid(values_file: Path, render_ci: RenderCi, object_validator: ObjectValidator) -> None:
    rendered = render_ci(values_file)
    problems = [problem for obj in rendered.objects for problem in object_validator.problems(obj)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_pod_templates_follow_policy(values_file: Path, render_ci: RenderCi) -> None:
    pods = [pod for obj in render_ci(values_file).objects for pod in pod_templates(obj)]
    assert any(pod.predictor for pod in pods)
    problems = [problem for pod in pods for problem in pod_policy_problems(pod)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_objects_carry_standard_labels(values_file: Path, render_ci: RenderCi) -> None:
    for obj in render_ci(values_file).objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "servekit", where
        assert labels.get("app.kubernetes.io/instance") == RELEASE, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("helm.sh/chart", "").startswith("servekit-"), where
        assert obj["metadata"].get("namespace"), f"{where} has no namespace"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_selectors_pick_the_predictor_pods(values_file: Path, render_ci: RenderCi) -> None:
    rendered = render_ci(values_file)
    pod_labels = [(pod.where, pod.spec.get("labels", {})) for pod in pod_templates(isvc(rendered))]
    selectors = [
        (f"PodDisruptionBudget/{o['metadata']['name']}", o["spec"]["selector"]["matchLabels"])
        for o in rendered.of_kind("PodDisruptionBudget")
    ]
    selectors += [
        (f"NetworkPolicy/{o['metadata']['name']}", o["spec"]["podSelector"]["matchLabels"])
        for o in rendered.of_kind("NetworkPolicy")
    ]
    selectors += [(f"Service/{o['metadata']['name']}", o["spec"]["selector"]) for o in rendered.of_kind("Service")]
    for what, selector in selectors:
        assert selector, f"{what} selects everything"
        for where, labels in pod_labels:
            assert labels_match(selector, labels), f"{what} selector {selector} misses {where} labels {labels}"


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_predictor_env_names_are_predictor_settings(values_file: Path, render_ci: RenderCi) -> None:
    from predictor.server.settings import PredictorSettings

    known = {f"PREDICTOR_{name.upper()}" for name in PredictorSettings.model_fields}
    for where, container in predictor_containers(isvc(render_ci(values_file))):
        ours = {name for name in env_of(container) if name.startswith("PREDICTOR_")}
        assert ours <= known, f"{where}: {sorted(ours - known)} are not predictor settings"


# --- defaults and model location ---------------------------------------------------------------


def test_default_is_standard_mode_hpa_with_the_baked_model(chart: helm_python.Chart) -> None:
    rendered = render(chart)
    service = isvc(rendered)
    assert service["metadata"]["name"] == "ci-servekit"
    assert service["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "hpa",
    }
    spec = predictor(rendered)
    assert spec["autoScaling"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]
    container = stable_container(rendered)
    assert container["image"] == f"servekit/predictor:{chart.metadata['appVersion']}"
    env = env_of(container)
    assert env["PREDICTOR_MODEL_DIR"] == chart.values["model"]["bakedDir"]
    assert env["PREDICTOR_WORKERS"] == "1"
    assert "STORAGE_URI" not in env
    assert [p["name"] for p in container["ports"]] == ["http1"]
    assert spec["automountServiceAccountToken"] is False
    account = rendered.one("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == account["metadata"]["name"]


def test_storage_uri_hands_the_model_to_kserves_storage_initializer(chart: helm_python.Chart) -> None:
    rendered = render(chart, {"model": {"storageUri": "gs://bucket/iris"}})
    env = env_of(stable_container(rendered))
    assert env["STORAGE_URI"] == "gs://bucket/iris"
    assert env["PREDICTOR_MODEL_DIR"] == "/mnt/models"


def test_image_digest_wins_over_tag_and_gpu_picks_the_cuda_image(chart: helm_python.Chart) -> None:
    digest = "sha256:" + "ab" * 32
    rendered = render(chart, {"image": {"tag": "1.2.3", "digest": digest}})
    assert stable_container(rendered)["image"] == f"servekit/predictor@{digest}"
    rendered = render(chart, {"gpu": {"enabled": True}})
    assert stable_container(rendered)["image"] == f"servekit/predictor:{chart.metadata['appVersion']}-cuda"


def test_long_release_names_still_give_valid_kserve_names(chart: helm_python.Chart) -> None:
    manifests = chart.render({}, name="a-very-long-release-name-for-a-model-serving-team", namespace=NAMESPACE)
    service = next(doc for doc in manifests.values() if "kind: InferenceService" in doc)
    name = re.search(r"^  name: (\S+)$", service, re.MULTILINE)
    assert name and len(name[1]) <= 45 and not name[1].endswith("-")


# --- deployment modes and autoscaling ----------------------------------------------------------


def test_keda_scales_on_requests_per_second_from_prometheus(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("standard-keda"))
    service = isvc(rendered)
    assert service["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    spec = service["spec"]["predictor"]
    assert spec["minReplicas"] == 0
    (metric,) = spec["autoScaling"]["metrics"]
    assert metric["type"] == "External"
    external = metric["external"]
    assert external["metric"]["backend"] == "prometheus"
    assert external["metric"]["query"] == (
        f'sum(rate(servekit_requests_total{{namespace="{NAMESPACE}",inferenceservice="ci-servekit",model="iris"}}[1m]))'
    )
    # Only this release's pods: the label the ServiceMonitor copies from KServe's pod label.
    assert service["metadata"]["name"] == "ci-servekit"
    assert external["target"] == {"type": "Value", "value": "20"}


def test_knative_mode_scales_to_zero_on_concurrency(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("knative-kpa"))
    service = isvc(rendered)
    assert service["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Knative"}
    spec = service["spec"]["predictor"]
    assert (spec["minReplicas"], spec["scaleMetric"], spec["scaleTarget"]) == (0, "concurrency", 16)
    assert spec["containerConcurrency"] == 64
    assert "autoScaling" not in spec
    # Knative rejects a pod securityContext without its feature flag; the container keeps it all.
    assert "securityContext" not in spec
    assert len(spec["containers"][0]["ports"]) == 1
    policy = rendered.one("NetworkPolicy")
    assert all("ports" not in rule for rule in policy["spec"]["ingress"]), "Knative traffic enters via queue-proxy"


def test_knative_mode_renders_pod_security_context_once_the_flag_is_on(render_ci: RenderCi) -> None:
    spec = predictor(render_ci(scenario("gpu-knative")))
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_standard_mode_network_policy_opens_only_the_predictor_ports(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("standard-hpa"))
    (rule,) = rendered.one("NetworkPolicy")["spec"]["ingress"]
    assert sorted(p["port"] for p in rule["ports"]) == [8080, 8081]
    container = stable_container(rendered)
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http1", 8080), ("grpc", 8081)]


def test_locked_down_egress_still_resolves_dns(render_ci: RenderCi) -> None:
    policy = render_ci(scenario("standard-keda")).one("NetworkPolicy")["spec"]
    assert "Egress" in policy["policyTypes"]
    assert {"port": 53, "protocol": "UDP"} in policy["egress"][0]["ports"]


# --- GPU ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gpu", "gpu-knative"])
def test_gpu_goes_in_limits_with_toleration_and_node_selector(name: str, render_ci: RenderCi) -> None:
    rendered = render_ci(scenario(name))
    spec = predictor(rendered)
    container = spec["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in container["resources"]["requests"]
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert env_of(container)["PREDICTOR_DEVICE"] == "cuda"
    assert container["image"].endswith("-cuda")
    if name == "gpu":  # several worker processes keep the one GPU busy
        assert env_of(container)["PREDICTOR_WORKERS"] == "4"


# --- canaries -----------------------------------------------------------------------------------


def test_knative_canary_splits_traffic_with_the_previous_revision(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("knative-canary"))
    service = isvc(rendered)
    assert service["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert "canary" not in service["spec"]
    assert stable_container(rendered)["image"] == "servekit/predictor:0.2.0"


def test_standard_canary_is_a_second_named_predictor(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("standard-canary"))
    spec = isvc(rendered)["spec"]
    assert "canaryTrafficPercent" not in spec["predictor"]
    assert spec["predictor"]["name"] == "v1"
    (canary,) = spec["canary"]
    assert canary["trafficPercent"] == 10
    assert canary["predictor"]["name"] == "v2"
    assert canary["predictor"]["minReplicas"] == 1
    # KServe rejects autoscaling fields on a canary and needs the stable model to come from storage.
    assert not {"maxReplicas", "autoScaling", "scaleMetric", "scaleTarget"} & set(canary["predictor"])
    assert env_of(spec["predictor"]["containers"][0])["STORAGE_URI"] == "s3://servekit-models/iris/v1"
    assert env_of(canary["predictor"]["containers"][0])["STORAGE_URI"] == "s3://servekit-models/iris/v2"
    test_pod = rendered.one("Pod")
    assert env_of(test_pod["spec"]["containers"][0])["INFER_URL"].startswith(f"http://{RELEASE}-servekit-v1-predictor.")


def test_canary_controller_has_least_rbac_in_its_namespace(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("knative-canary"))
    name = isvc(rendered)["metadata"]["name"]
    (role,) = rendered.of_kind("Role")
    assert role["rules"] == [
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "resourceNames": [name],
         "verbs": ["get", "patch"]},
        {"apiGroups": ["servekit.dev"], "resources": ["canaryanalyses"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["servekit.dev"], "resources": ["canaryanalyses/status"], "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [f"{name}-canary-history"],
         "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]  # fmt: skip
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")
    binding = rendered.one("RoleBinding")
    deployment = rendered.one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (subject,) = binding["subjects"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert subject["name"] == pod["serviceAccountName"] and subject["namespace"] == NAMESPACE
    assert pod["automountServiceAccountToken"] is True, "the controller calls the API"
    account = next(a for a in rendered.of_kind("ServiceAccount") if a["metadata"]["name"] == subject["name"])
    assert account["automountServiceAccountToken"] is False, "only the controller pod mounts the token"


def test_canary_controller_watches_this_releases_analysis(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("standard-canary"))
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["servekit-canary"]
    assert container["args"] == [
        "controller", f"--namespace={NAMESPACE}", f"--selector=app.kubernetes.io/instance={RELEASE}",
        "--prometheus-url=http://kube-prometheus-stack-prometheus.monitoring.svc:9090", "--tick=10",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]  # fmt: skip
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-health"}
    analysis = rendered.one("CanaryAnalysis")
    assert analysis["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, "the --selector finds it"
    assert analysis["spec"]["inferenceService"] == isvc(rendered)["metadata"]["name"]
    assert analysis["spec"]["manualGates"] == [60] and analysis["spec"]["steps"] == [10, 30, 60]
    from predictor.canary.spec import CanaryAnalysisSpec

    assert CanaryAnalysisSpec.model_validate(analysis["spec"]).weights() == [10, 30, 60], "the controller reads it"


def test_canary_controller_runs_its_own_image(chart: helm_python.Chart, render_ci: RenderCi) -> None:
    """The controller image (the Dockerfile's `controller` target) is apart from the predictor's: the
    scenario's predictor tag 0.2.0 does not move it, and it has no `-cuda` variant."""
    deployment = render_ci(scenario("knative-canary")).one("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"servekit/canary-controller:{chart.metadata['appVersion']}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    values = ci_values(scenario("standard-canary"))
    values["gpu"] = {"enabled": True}
    image = {"repository": "registry.example/ops/canary", "tag": "7", "pullPolicy": "Always"}
    values["canaryController"]["image"] = image
    (container,) = render(chart, values).one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == ("registry.example/ops/canary:7", "Always")
    values["canaryController"]["image"]["digest"] = "sha256:" + "cd" * 32
    (container,) = render(chart, values).one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/ops/canary@sha256:" + "cd" * 32


# --- monitoring ---------------------------------------------------------------------------------


def test_service_monitor_scrapes_the_metrics_service(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("standard-hpa"))
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"] and port["targetPort"] == 8080
    assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout", "relabelings"}


def test_service_monitor_copies_kserves_pod_labels_onto_the_series(render_ci: RenderCi) -> None:
    (endpoint,) = render_ci(scenario("standard-canary")).one("ServiceMonitor")["spec"]["endpoints"]
    copied = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
    assert copied["app"] == ["__meta_kubernetes_pod_label_app"], "Standard mode: isvc.<isvc>-<predictor>-predictor"
    assert copied["serving_knative_dev_revision"] == ["__meta_kubernetes_pod_label_serving_knative_dev_revision"]
    assert copied["namespace"] == ["__meta_kubernetes_namespace"]
    assert copied["inferenceservice"] == ["__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice"]
    assert all(set(r) == {"sourceLabels", "targetLabel"} for r in endpoint["relabelings"]), "plain copies"


def test_metrics_service_selects_stable_and_canary_pods(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("standard-canary"))
    service = next(s for s in rendered.of_kind("Service") if s["metadata"]["name"].endswith("-metrics"))
    pods = list(pod_templates(isvc(rendered)))
    assert [pod.where.split()[-1] for pod in pods] == ["predictor", "v2"]
    for pod in pods:
        assert labels_match(service["spec"]["selector"], pod.spec["labels"]), pod.where


def test_grafana_dashboard_charts_the_predictor_metrics(render_ci: RenderCi) -> None:
    config_map = render_ci(scenario("standard-hpa")).one("ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    dashboard = json.loads(text)
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {
        re.sub(r"_(bucket|sum|count)$", "", name) for expr in exprs for name in re.findall(r"\b[a-z_]+(?=\{)", expr)
    }
    assert used, "no metric found in the dashboard queries"
    assert used <= KNOWN_METRICS, f"unknown metrics {sorted(used - KNOWN_METRICS)}"
    assert {"servekit_requests_total", "servekit_request_duration_seconds", "servekit_queue_depth"} <= used


# --- helm test and NOTES ------------------------------------------------------------------------


def test_helm_test_hook_sends_one_v2_inference(chart: helm_python.Chart) -> None:
    rendered = render(chart)
    pod = rendered.one("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    env = env_of(container)
    assert env["INFER_URL"] == f"http://{RELEASE}-servekit-predictor.{NAMESPACE}.svc.cluster.local/v2/models/iris/infer"
    request = json.loads(env["INFER_REQUEST"])
    assert request == chart.values["tests"]["request"]
    compile(container["args"][0], "helm-test", "exec")  # the inline client is valid Python
    assert container["command"] == ["python", "-c"] and "urllib.request" in container["args"][0]


@pytest.mark.parametrize("values_file", CI_VALUES, ids=SCENARIO_IDS)
def test_helm_test_request_is_a_valid_v2_request(values_file: Path, render_ci: RenderCi) -> None:
    pods = render_ci(values_file).of_kind("Pod")
    requests = [json.loads(env_of(pod["spec"]["containers"][0])["INFER_REQUEST"]) for pod in pods]
    spec = load_reference(V2_REST_SPEC_FILE)
    schema = {"$ref": "#/components/schemas/inference_request", "components": spec["components"]}
    for request in requests:
        jsonschema.validate(request, schema)
        for tensor in request["inputs"]:
            assert math.prod(tensor["shape"]) == len(tensor["data"]), f"{tensor['name']}: shape and data disagree"


def test_notes_tell_how_to_call_the_model(render_ci: RenderCi) -> None:
    standard = render_ci(scenario("default")).notes
    assert f"port-forward service/{RELEASE}-servekit-predictor 8080:80" in standard
    assert "/v2/models/iris/infer" in standard and '"inputs"' in standard
    assert f"helm test {RELEASE}" in standard
    knative = render_ci(scenario("knative-canary")).notes
    assert "{.status.url}" in knative and "Promote" in knative and "canary.knative.enabled=false" in knative
