#!/usr/bin/env python3
"""Keep a Prometheus scrape configuration in step with the cluster's ServiceMonitors and PodMonitors.

The control plane runs Debian's Prometheus on the host. No Prometheus Operator runs (it would run
Prometheus in a pod, from an image this machine cannot pull), and Debian builds Prometheus without
its Kubernetes service discovery, so this loop does both parts of their work that decide what is
scraped, every few seconds:

- the operator's: each monitor endpoint becomes a scrape job as the operator documents it (job
  name, the selector and port kept by relabeling, the target labels, then the monitor's own
  relabelings and metric relabelings), written when it changed, then Prometheus is reloaded;
- Kubernetes service discovery's: each job's targets are written to a file_sd file with the
  `__meta_kubernetes_*` labels Prometheus' `endpoints` and `pod` roles give (read with kubectl),
  so the relabelings above see what they would in a cluster.

Only addresses inside --scrape-network (the real node's pods) become targets: kwok's simulated pods
have addresses that nothing answers. Fields the translation does not know are refused in a log line
naming the monitor and the field, rather than scraped differently from a real cluster.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

# What the translation knows of each kind's spec and endpoint; anything else is refused.
SERVICE_MONITOR_FIELDS = {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"}
POD_MONITOR_FIELDS = {"selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel", "podTargetLabels"}
ENDPOINT_FIELDS = {
    "port",
    "targetPort",
    "path",
    "scheme",
    "interval",
    "scrapeTimeout",
    "relabelings",
    "metricRelabelings",
    "honorLabels",
}
RELABEL_KEYS = {
    "sourceLabels": "source_labels",
    "targetLabel": "target_label",
    "replacement": "replacement",
    "regex": "regex",
    "action": "action",
    "separator": "separator",
    "modulus": "modulus",
}


class UnsupportedMonitor(ValueError):
    """A monitor uses a field this translation does not implement."""


def sanitize(name: str) -> str:
    """Kubernetes service discovery's spelling of a label name in a meta label."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def relabel(rule: dict[str, Any]) -> dict[str, Any]:
    unknown = set(rule) - set(RELABEL_KEYS)
    if unknown:
        raise UnsupportedMonitor(f"relabeling fields {sorted(unknown)}")
    translated = {RELABEL_KEYS[key]: value for key, value in rule.items()}
    if "action" in translated:
        translated["action"] = str(translated["action"]).lower()
    return translated


def selector_keep(selector: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Keep only targets whose Service (role endpoints) or pod (role pod) matches the label selector."""
    if selector.get("matchExpressions"):
        raise UnsupportedMonitor("selector.matchExpressions")
    rules = []
    for key, value in sorted(selector.get("matchLabels", {}).items()):
        label = sanitize(key)
        rules.append(
            {
                "source_labels": [
                    f"__meta_kubernetes_{role}_label_{label}",
                    f"__meta_kubernetes_{role}_labelpresent_{label}",
                ],
                "regex": f"({re.escape(value)});true",
                "action": "keep",
            }
        )
    return rules


def namespaces(monitor: dict[str, Any]) -> list[str] | None:
    """The namespaces to discover in; None means every namespace."""
    chosen = monitor["spec"].get("namespaceSelector", {})
    if chosen.get("any"):
        return None
    return list(chosen.get("matchNames") or [monitor["metadata"]["namespace"]])


def endpoint_options(endpoint: dict[str, Any]) -> dict[str, Any]:
    unknown = set(endpoint) - ENDPOINT_FIELDS
    if unknown:
        raise UnsupportedMonitor(f"endpoint fields {sorted(unknown)}")
    options: dict[str, Any] = {
        "metrics_path": endpoint.get("path", "/metrics"),
        "scheme": endpoint.get("scheme", "http"),
    }
    for field, key in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout")):
        if field in endpoint:
            options[key] = endpoint[field]
    if endpoint.get("honorLabels"):
        options["honor_labels"] = True
    if endpoint.get("metricRelabelings"):
        options["metric_relabel_configs"] = [relabel(rule) for rule in endpoint["metricRelabelings"]]
    return options


def port_keep(endpoint: dict[str, Any], role: str) -> list[dict[str, Any]]:
    if "port" in endpoint:
        source = (
            "__meta_kubernetes_endpoint_port_name"
            if role == "endpoints"
            else "__meta_kubernetes_pod_container_port_name"
        )
        return [{"source_labels": [source], "regex": re.escape(endpoint["port"]), "action": "keep"}]
    if "targetPort" in endpoint:
        target = str(endpoint["targetPort"])
        source = "number" if target.isdigit() else "name"
        return [
            {
                "source_labels": [f"__meta_kubernetes_pod_container_port_{source}"],
                "regex": re.escape(target),
                "action": "keep",
            }
        ]
    return []


def target_labels(role: str, monitor: dict[str, Any], endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The labels the operator puts on every target, before the monitor's own relabelings."""
    rules = [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
    ]
    if role == "endpoints":
        rules.append({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"})
        job_source = "__meta_kubernetes_service_name"
        job_label = monitor["spec"].get("jobLabel")
        if job_label:
            job_source = f"__meta_kubernetes_service_label_{sanitize(job_label)}"
        rules.append({"source_labels": [job_source], "target_label": "job"})
        for label in monitor["spec"].get("targetLabels", []):
            rules.append(
                {
                    "source_labels": [f"__meta_kubernetes_service_label_{sanitize(label)}"],
                    "target_label": sanitize(label),
                }
            )
    else:
        rules.append(
            {"target_label": "job", "replacement": f"{monitor['metadata']['namespace']}/{monitor['metadata']['name']}"}
        )
    for label in monitor["spec"].get("podTargetLabels", []):
        rules.append(
            {"source_labels": [f"__meta_kubernetes_pod_label_{sanitize(label)}"], "target_label": sanitize(label)}
        )
    name = endpoint.get("port") or str(endpoint.get("targetPort", ""))
    if name:
        rules.append({"target_label": "endpoint", "replacement": name})
    return rules


def scrape_jobs(monitor: dict[str, Any], targets_dir: Path) -> list[dict[str, Any]]:
    """One scrape job per endpoint of a ServiceMonitor or PodMonitor."""
    kind = monitor["kind"]
    role, fields, endpoints_field, prefix = (
        ("endpoints", SERVICE_MONITOR_FIELDS, "endpoints", "serviceMonitor")
        if kind == "ServiceMonitor"
        else ("pod", POD_MONITOR_FIELDS, "podMetricsEndpoints", "podMonitor")
    )
    unknown = set(monitor["spec"]) - fields
    if unknown:
        raise UnsupportedMonitor(f"spec fields {sorted(unknown)}")
    selector_role = "service" if role == "endpoints" else "pod"
    jobs = []
    meta = monitor["metadata"]
    for index, endpoint in enumerate(monitor["spec"].get(endpoints_field, [])):
        relabel_configs = selector_keep(monitor["spec"].get("selector", {}), selector_role)
        relabel_configs += port_keep(endpoint, role)
        relabel_configs += target_labels(role, monitor, endpoint)
        relabel_configs += [relabel(rule) for rule in endpoint.get("relabelings", [])]
        job_name = f"{prefix}/{meta['namespace']}/{meta['name']}/{index}"
        jobs.append(
            {
                "job_name": job_name,
                "file_sd_configs": [
                    {"files": [str(targets_dir / f"{sanitize(job_name)}.json")], "refresh_interval": "5s"}
                ],
                "relabel_configs": relabel_configs,
                **endpoint_options(endpoint),
            }
        )
    return jobs


def monitor_key(monitor: dict[str, Any]) -> tuple[str, str, str]:
    return monitor["kind"], monitor["metadata"]["namespace"], monitor["metadata"]["name"]


def configuration(monitors: list[dict[str, Any]], targets_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The whole Prometheus configuration, and a line for each monitor refused."""
    jobs, refused = [], []
    for monitor in sorted(monitors, key=monitor_key):
        try:
            jobs += scrape_jobs(monitor, targets_dir)
        except UnsupportedMonitor as error:
            kind, namespace, name = monitor_key(monitor)
            refused.append(f"{kind} {namespace}/{name}: not scraped, it uses {error}")
    return {"global": {"scrape_interval": "5s", "evaluation_interval": "5s"}, "scrape_configs": jobs}, refused


# --- Kubernetes service discovery's part -------------------------------------------------------


def object_labels(prefix: str, obj: dict[str, Any]) -> dict[str, str]:
    """An object's labels as `<prefix>_label_<name>` and `<prefix>_labelpresent_<name>`."""
    labels = {}
    for key, value in obj["metadata"].get("labels", {}).items():
        labels[f"{prefix}_label_{sanitize(key)}"] = value
        labels[f"{prefix}_labelpresent_{sanitize(key)}"] = "true"
    return labels


def pod_labels(pod: dict[str, Any], container: dict[str, Any] | None, port: dict[str, Any] | None) -> dict[str, str]:
    labels = {
        "__meta_kubernetes_namespace": pod["metadata"]["namespace"],
        "__meta_kubernetes_pod_name": pod["metadata"]["name"],
        "__meta_kubernetes_pod_ip": pod.get("status", {}).get("podIP", ""),
        "__meta_kubernetes_pod_node_name": pod["spec"].get("nodeName", ""),
        "__meta_kubernetes_pod_phase": pod.get("status", {}).get("phase", ""),
        **object_labels("__meta_kubernetes_pod", pod),
    }
    if container is not None:
        labels["__meta_kubernetes_pod_container_name"] = container["name"]
    if port is not None:
        labels["__meta_kubernetes_pod_container_port_name"] = port.get("name", "")
        labels["__meta_kubernetes_pod_container_port_number"] = str(port["containerPort"])
        labels["__meta_kubernetes_pod_container_port_protocol"] = port.get("protocol", "TCP")
    return labels


def container_port(pod: dict[str, Any], number: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    for container in pod["spec"].get("containers", []):
        for port in container.get("ports", []):
            if port["containerPort"] == number:
                return container, port
    return None, None


class Cluster:
    """The objects discovery reads, from one kubectl call."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.services = [o for o in items if o["kind"] == "Service"]
        self.endpoints = {
            (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in items if o["kind"] == "Endpoints"
        }
        self.pods = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in items if o["kind"] == "Pod"}
        self.monitors = [o for o in items if o["kind"] in ("ServiceMonitor", "PodMonitor")]


def in_scope(obj: dict[str, Any], where: list[str] | None) -> bool:
    return where is None or obj["metadata"]["namespace"] in where


def endpoints_targets(
    monitor: dict[str, Any], cluster: Cluster, network: ipaddress.IPv4Network
) -> list[dict[str, Any]]:
    """What Prometheus' `endpoints` role gives for the Services in the monitor's namespaces."""
    groups = []
    where = namespaces(monitor)
    for service in (s for s in cluster.services if in_scope(s, where)):
        key = (service["metadata"]["namespace"], service["metadata"]["name"])
        endpoints = cluster.endpoints.get(key)
        if endpoints is None:
            continue
        service_labels = {
            "__meta_kubernetes_service_name": key[1],
            **object_labels("__meta_kubernetes_service", service),
        }
        for subset in endpoints.get("subsets", []):
            addresses = [(a, "true") for a in subset.get("addresses", [])]
            addresses += [(a, "false") for a in subset.get("notReadyAddresses", [])]
            for port in subset.get("ports", []):
                for address, ready in addresses:
                    if ipaddress.ip_address(address["ip"]) not in network:
                        continue
                    labels = {
                        "__meta_kubernetes_namespace": key[0],
                        "__meta_kubernetes_endpoints_name": key[1],
                        "__meta_kubernetes_endpoint_ready": ready,
                        "__meta_kubernetes_endpoint_port_name": port.get("name", ""),
                        "__meta_kubernetes_endpoint_port_protocol": port.get("protocol", "TCP"),
                        **service_labels,
                    }
                    target = address.get("targetRef", {})
                    pod = cluster.pods.get((key[0], target.get("name", ""))) if target.get("kind") == "Pod" else None
                    if pod is not None:
                        container, container_port_ = container_port(pod, port["port"])
                        labels |= pod_labels(pod, container, container_port_)
                    groups.append({"targets": [f"{address['ip']}:{port['port']}"], "labels": labels})
    return groups


def pod_targets(monitor: dict[str, Any], cluster: Cluster, network: ipaddress.IPv4Network) -> list[dict[str, Any]]:
    """What Prometheus' `pod` role gives: one target per declared container port."""
    groups = []
    where = namespaces(monitor)
    for pod in (p for p in cluster.pods.values() if in_scope(p, where)):
        ip = pod.get("status", {}).get("podIP")
        if not ip or ipaddress.ip_address(ip) not in network:
            continue
        for container in pod["spec"].get("containers", []):
            for port in container.get("ports", []):
                labels = pod_labels(pod, container, port)
                groups.append({"targets": [f"{ip}:{port['containerPort']}"], "labels": labels})
    return groups


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.with_suffix(".tmp").write_text(text)
    path.with_suffix(".tmp").replace(path)
    return True


def read_cluster(kubeconfig: str) -> Cluster:
    kinds = "services,endpoints,pods,servicemonitors,podmonitors"
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "get", kinds, "--all-namespaces", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return Cluster(json.loads(result.stdout)["items"])


def sync_once(args: argparse.Namespace, reported: set[str]) -> None:
    cluster = read_cluster(args.kubeconfig)
    network = ipaddress.ip_network(args.scrape_network)
    out = Path(args.out)
    targets_dir = out.parent / "targets"
    targets_dir.mkdir(exist_ok=True)
    config, refused = configuration(cluster.monitors, targets_dir)
    for line in set(refused) - reported:
        print(line, file=sys.stderr, flush=True)
    reported |= set(refused)
    for monitor in cluster.monitors:
        try:
            jobs = scrape_jobs(monitor, targets_dir)
        except UnsupportedMonitor:
            continue  # reported above
        discover = endpoints_targets if monitor["kind"] == "ServiceMonitor" else pod_targets
        for job in jobs:
            targets = json.dumps(discover(monitor, cluster, network), indent=1)
            write_if_changed(Path(job["file_sd_configs"][0]["files"][0]), targets)
    if write_if_changed(out, json.dumps(config, indent=1, sort_keys=True)):
        if args.reload_url:
            urllib.request.urlopen(urllib.request.Request(args.reload_url, method="POST"), timeout=10).close()
        print(f"scrape configuration: {len(config['scrape_configs'])} jobs", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--out", required=True, help="the Prometheus configuration file to write (JSON is YAML)")
    parser.add_argument(
        "--scrape-network", required=True, help="only targets inside this network (the real node's pods)"
    )
    parser.add_argument("--reload-url", default="", help="POSTed after each change (Prometheus' /-/reload)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between reads of the cluster")
    parser.add_argument("--once", action="store_true", help="write the files once and exit")
    args = parser.parse_args()
    reported: set[str] = set()
    while True:
        try:
            sync_once(args, reported)
        except (subprocess.SubprocessError, OSError, ValueError) as error:
            if args.once:
                raise
            print(f"could not sync the scrape configuration: {error}", file=sys.stderr, flush=True)
        if args.once:
            return
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
