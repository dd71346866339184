"""The chart's production values: logging, the token Secret, payload logging, Istio policies, cluster-local."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import helm_python
import pytest

from tests.support.k8s_checks import env_of, labels_match, pod_templates
from tests.support.rendering import CHART_DIR, CI_VALUES, Rendered, ci_values, render

RenderCi = Callable[[Path], Rendered]
PROTECTED = ["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer", "/v2/models/iris", "/v1/models/iris:predict"]
OPEN = ["/v2/health/live", "/v2/health/ready", "/v2/models/iris/ready", "/metrics"]


def scenario(name: str) -> Path:
    return CHART_DIR / "ci" / f"{name}-values.yaml"


def container(rendered: Rendered) -> dict[str, Any]:
    return rendered.one("InferenceService")["spec"]["predictor"]["containers"][0]


def istio_path_matches(pattern: str, path: str) -> bool:
    """Istio's operation.paths matching: exact, prefix `x*`, suffix `*x`, or `*`."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return path.endswith(pattern[1:])
    return path == pattern


def test_ci_scenarios_cover_the_security_features(render_ci: RenderCi) -> None:
    kinds = {obj["kind"] for path in CI_VALUES for obj in render_ci(path).objects}
    assert {"Secret", "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"} <= kinds
    services = [render_ci(path).one("InferenceService") for path in CI_VALUES]
    assert any("logger" in s["spec"]["predictor"] for s in services)
    assert any(s["metadata"]["labels"].get("networking.kserve.io/visibility") == "cluster-local" for s in services)


def test_defaults_log_json_and_add_no_security_objects(chart: helm_python.Chart) -> None:
    rendered = render(chart)
    env = env_of(container(rendered))
    assert (env["PREDICTOR_LOG_FORMAT"], env["PREDICTOR_LOG_LEVEL"]) == ("json", "info")
    assert env["PREDICTOR_MAX_BODY_BYTES"] == str(64 * 1024 * 1024)
    assert "PREDICTOR_AUTH_TOKEN_FILE" not in env
    assert not {"Secret", "PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"} & {
        obj["kind"] for obj in rendered.objects
    }
    service = rendered.one("InferenceService")
    assert "logger" not in service["spec"]["predictor"]
    assert "networking.kserve.io/visibility" not in service["metadata"]["labels"]


def test_token_secret_from_values_is_mounted_read_only(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("token"))
    secret = rendered.one("Secret")
    assert secret["metadata"]["name"] == "ci-servekit-auth"
    assert secret["stringData"]["token"].splitlines() == ["old-token-still-accepted-during-rotation", "new-token"]
    predictor = rendered.one("InferenceService")["spec"]["predictor"]
    env = env_of(predictor["containers"][0])
    assert env["PREDICTOR_AUTH_TOKEN_FILE"] == "/var/run/secrets/servekit/auth/token"
    assert (env["PREDICTOR_LOG_FORMAT"], env["PREDICTOR_LOG_LEVEL"]) == ("text", "debug")
    (mount,) = [m for m in predictor["containers"][0]["volumeMounts"] if m["name"] == "auth-token"]
    assert mount == {"name": "auth-token", "mountPath": "/var/run/secrets/servekit/auth", "readOnly": True}
    (volume,) = [v for v in predictor["volumes"] if v["name"] == "auth-token"]
    assert volume["secret"]["secretName"] == "ci-servekit-auth"
    # The helm test pod sends the token too.
    test_pod = rendered.one("Pod")
    assert env_of(test_pod["spec"]["containers"][0])["TOKEN_FILE"] == "/var/run/secrets/servekit/auth/token"
    assert any(v.get("secret", {}).get("secretName") == "ci-servekit-auth" for v in test_pod["spec"]["volumes"])


def test_existing_token_secret_is_used_not_created(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("hardened"))
    assert not rendered.of_kind("Secret")
    predictor = rendered.one("InferenceService")["spec"]["predictor"]
    (volume,) = [v for v in predictor["volumes"] if v["name"] == "auth-token"]
    assert volume["secret"]["secretName"] == "iris-predictor-token"
    env = env_of(predictor["containers"][0])
    assert (env["PREDICTOR_LOG_LEVEL"], env["PREDICTOR_MAX_BODY_BYTES"]) == ("warning", "16777216")


def test_payload_logging_is_kserves_logger_with_the_agent_port_open(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("hardened"))
    service = rendered.one("InferenceService")
    assert service["spec"]["predictor"]["logger"] == {
        "mode": "all",
        "url": "http://payload-sink.observability.svc.cluster.local",
        "metadataHeaders": ["x-request-id", "x-b3-traceid"],
        "storage": {
            "path": "s3://servekit-payloads/iris",
            "key": "credentials",
            "serviceAccountName": "payload-writer",
            "parameters": {"region": "eu-west-1"},
        },
    }
    ports = [p["port"] for p in rendered.one("NetworkPolicy")["spec"]["ingress"][0]["ports"]]
    assert ports == [8080, 9081, 15020], "the agent's 9081, and Istio's merged metrics under STRICT mTLS"
    assert service["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"


def test_knative_payload_logging_needs_no_port_list(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("jwt"))
    assert rendered.one("InferenceService")["spec"]["predictor"]["logger"]["mode"] == "request"
    assert "ports" not in rendered.one("NetworkPolicy")["spec"]["ingress"][0]


@pytest.mark.parametrize("name", ["hardened", "jwt"])
def test_istio_policies_select_the_predictor_pods(name: str, render_ci: RenderCi) -> None:
    rendered = render_ci(scenario(name))
    pods = [pod for pod in pod_templates(rendered.one("InferenceService")) if pod.predictor]
    policies = [*rendered.of_kind("PeerAuthentication"), *rendered.of_kind("AuthorizationPolicy")]
    policies += rendered.of_kind("RequestAuthentication")
    assert policies
    for policy in policies:
        for pod in pods:
            assert labels_match(policy["spec"]["selector"]["matchLabels"], pod.spec["labels"]), policy["kind"]
    assert rendered.one("PeerAuthentication")["spec"]["mtls"] == {"mode": "STRICT"}


def with_service_monitor(chart: helm_python.Chart, name: str) -> Rendered:
    values = ci_values(scenario(name))
    values.setdefault("metrics", {})["serviceMonitor"] = {"enabled": True}
    return render(chart, values)


@pytest.mark.parametrize("name", ["hardened", "jwt"])
def test_strict_mtls_scrapes_istios_merged_metrics_on_15020(name: str, chart: helm_python.Chart) -> None:
    # STRICT refuses the plaintext scrape of 8080 by a Prometheus outside the mesh; the sidecar serves
    # the predictor's /metrics (merged with its own) in plaintext on 15020 at /stats/prometheus.
    rendered = with_service_monitor(chart, name)
    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/stats/prometheus"
    service = next(s for s in rendered.of_kind("Service") if s["metadata"]["name"].endswith("-metrics"))
    assert service["spec"]["ports"] == [{"name": "http-metrics", "port": 15020, "targetPort": 15020, "protocol": "TCP"}]
    assert endpoint["port"] == "http-metrics"
    # Istio's injector reads where the predictor serves its metrics from these.
    for pod in pod_templates(rendered.one("InferenceService")):
        if pod.predictor:
            annotations = pod.spec["annotations"]
            assert annotations["prometheus.io/scrape"] == "true", pod.where
            assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == ("8080", "/metrics")
    (rule,) = rendered.one("NetworkPolicy")["spec"]["ingress"]
    namespaces = rule["from"][-1]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert "monitoring" in namespaces, "Prometheus's namespace may connect"
    if name == "hardened":  # Standard mode lists ports; Knative mode opens every port to these sources
        assert 15020 in [p["port"] for p in rule["ports"]]
    else:
        assert "ports" not in rule


def test_without_istio_prometheus_scrapes_the_predictor_on_8080(chart: helm_python.Chart) -> None:
    rendered = with_service_monitor(chart, "standard-hpa")
    (endpoint,) = rendered.one("ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    service = next(s for s in rendered.of_kind("Service") if s["metadata"]["name"].endswith("-metrics"))
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, 8080)]
    assert 15020 not in [p["port"] for p in rendered.one("NetworkPolicy")["spec"]["ingress"][0]["ports"]]
    for pod in pod_templates(rendered.one("InferenceService")):
        assert not any(key.startswith("prometheus.io/") for key in pod.spec.get("annotations", {})), pod.where


def test_pod_annotations_of_ones_own_win_over_the_scrape_annotations(chart: helm_python.Chart) -> None:
    values = ci_values(scenario("hardened"))
    values.setdefault("predictor", {})["podAnnotations"] = {"prometheus.io/scrape": "false", "team": "ml"}
    spec = render(chart, values).one("InferenceService")["spec"]["predictor"]
    assert spec["annotations"]["prometheus.io/scrape"] == "false"
    assert spec["annotations"]["team"] == "ml"
    assert spec["annotations"]["prometheus.io/port"] == "8080"


@pytest.mark.parametrize("name", ["hardened", "jwt"])
def test_authorization_opens_only_probes_and_metrics_to_everyone(name: str, render_ci: RenderCi) -> None:
    policy = render_ci(scenario(name)).one("AuthorizationPolicy")["spec"]
    assert policy["action"] == "ALLOW"
    anonymous = [rule for rule in policy["rules"] if "from" not in rule and "when" not in rule]
    assert len(anonymous) == 1
    paths = anonymous[0]["to"][0]["operation"]["paths"]
    for path in OPEN:
        assert any(istio_path_matches(p, path) for p in paths), path
    for path in PROTECTED:
        assert not any(istio_path_matches(p, path) for p in paths), path
    identified = [rule for rule in policy["rules"] if "from" in rule]
    assert identified and all("to" not in rule for rule in identified)


def test_jwt_claims_become_conditions_on_validated_tokens(render_ci: RenderCi) -> None:
    rendered = render_ci(scenario("jwt"))
    rules = rendered.one("AuthorizationPolicy")["spec"]["rules"]
    (jwt_rule,) = [rule for rule in rules if "when" in rule]
    assert jwt_rule["from"] == [{"source": {"requestPrincipals": ["https://issuer.example.com/*"]}}]
    assert jwt_rule["when"] == [{"key": "request.auth.claims[groups]", "values": ["ml-clients"]}]
    jwt = rendered.one("RequestAuthentication")["spec"]["jwtRules"][0]
    assert jwt["issuer"] == "https://issuer.example.com"


def test_claims_alone_accept_any_validated_token(chart: helm_python.Chart) -> None:
    values = {
        "istio": {
            "requestAuthentication": {"enabled": True, "jwtRules": [{"issuer": "https://i", "jwksUri": "https://i/k"}]},
            "authorizationPolicy": {"enabled": True, "claims": [{"claim": "aud", "values": ["servekit"]}]},
        }
    }
    rules = render(chart, values).one("AuthorizationPolicy")["spec"]["rules"]
    assert [rule["from"] for rule in rules if "from" in rule] == [[{"source": {"requestPrincipals": ["*"]}}]]


def test_notes_say_how_to_send_the_token(render_ci: RenderCi) -> None:
    notes = render_ci(scenario("token")).notes
    assert re.search(r"Authorization: Bearer .*get secret ci-servekit-auth", notes), notes
