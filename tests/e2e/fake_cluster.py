"""Stand-ins for docker, kind, kubectl, helm and curl that behave like a kind cluster running KServe.

They let the hack/ scripts run here, where there is no Docker engine: `hack/e2e.sh` goes through its
whole flow (cluster, KServe, image, Helm releases, port-forwards, calls, teardown) against them, so
its control flow, its flags and the lines it prints are tested on every run. What a real cluster
does (KServe reconciling, pods serving) is modelled only as far as the scripts can observe it:

- `helm upgrade --install` renders the real chart (helm_python) with the given values (`--set`
  typed as Helm types it, `--set-string` kept a string), and the InferenceService it renders is
  what `kubectl get inferenceservice` then reports;
- `kubectl apply -k` builds the kustomization with the real `kubectl kustomize`;
- a predictor answers only when its image was loaded into the kind cluster with pullPolicy Never,
  and a model on the PVC only after the model-store Job ran;
- every call is appended to a log, for the tests to check what was run.

Each tool is a small shell wrapper running `python fake_cluster.py TOOL ARGS...` with
FAKE_CLUSTER_STATE pointing at a JSON file. FAKE_CLUSTER_FAIL makes one behaviour go wrong on
purpose (see `failure`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

if not __package__:  # run as `python fake_cluster.py` by the tool wrappers: make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.pins import read_versions

TOOLS = ("docker", "kind", "kubectl", "helm", "curl")
KSERVE_VERSION = read_versions()["KSERVE_VERSION"]
CERT_MANAGER_VERSION = read_versions()["CERT_MANAGER_VERSION"]


class Exit(Exception):
    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- state ---------------------------------------------------------------------------------------


def state_path() -> Path:
    return Path(os.environ["FAKE_CLUSTER_STATE"])


@contextmanager
def state() -> Iterator[dict[str, Any]]:
    """The shared state, locked: port-forwards run in the background while other tools run."""
    path = state_path()
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data.setdefault("clusters", {})
        data.setdefault("images", [])
        data.setdefault("calls", [])
        try:
            yield data
        finally:  # also when a tool fails or a port-forward goes on serving
            path.write_text(json.dumps(data, indent=1))


def failure() -> str:
    """FAKE_CLUSTER_FAIL: 'wrong-label' (predictors answer label 2), 'helm-test' (helm test fails)."""
    return os.environ.get("FAKE_CLUSTER_FAIL", "")


def cluster_of_context(data: dict[str, Any], context: str | None) -> dict[str, Any]:
    context = context or data.get("current_context")
    if not context or not context.startswith("kind-") or context[5:] not in data["clusters"]:
        raise Exit(1, f"error: context {context!r} does not exist or its cluster is not running")
    cluster: dict[str, Any] = data["clusters"][context[5:]]
    return cluster


def take(args: list[str], *flags: str) -> str | None:
    """Remove FLAG VALUE (or FLAG=VALUE) from args and return VALUE."""
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args):
                value = args[i + 1]
                del args[i : i + 2]
                return value
            if arg.startswith(flag + "="):
                del args[i]
                return arg.split("=", 1)[1]
    return None


# --- docker and kind ------------------------------------------------------------------------------


def docker(args: list[str]) -> None:
    with state() as data:
        if args[:1] == ["info"]:
            print("27.3.1")
        elif args[:1] == ["build"]:
            tag = take(args, "-t")
            context_dir = Path(args[-1])
            if not (context_dir / "Dockerfile").is_file():
                raise Exit(1, f"ERROR: no Dockerfile in {context_dir}")
            data["images"].append(tag)
            print(f"naming to {tag} done")
        elif args[:1] == ["exec"] and "crictl" in args:
            node, image = args[1], args[-1]
            cluster = data["clusters"].get(node.removesuffix("-control-plane"))
            if cluster is None or image not in cluster["images"]:
                raise Exit(1, f"image {image} not found")
        else:
            raise Exit(1, f"fake docker: unsupported command {args}")


def kind(args: list[str]) -> None:
    with state() as data:
        clusters = data["clusters"]
        name = take(args, "--name") or "kind"
        if args[:1] == ["version"]:
            print("kind v0.30.0 go1.24.6 linux/amd64")
        elif args[:2] == ["get", "clusters"]:
            print("\n".join(clusters))
        elif args[:2] == ["get", "nodes"]:
            print(f"{name}-control-plane")
        elif args[:2] == ["create", "cluster"]:
            if name in clusters:
                raise Exit(
                    1, f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"'
                )
            if "--config" in args:
                yaml.safe_load(sys.stdin.read())
            clusters[name] = {"namespaces": ["default", "kube-system"], "images": [], "objects": {}}
            data["current_context"] = f"kind-{name}"
            print(f"Creating cluster {name!r} ...")
        elif args[:2] == ["delete", "cluster"]:
            clusters.pop(name, None)
            print(f"Deleting cluster {name!r} ...")
        elif args[:2] == ["load", "docker-image"]:
            image = args[2]
            if image not in data["images"]:
                raise Exit(1, f"ERROR: image: {image!r} not present locally")
            if name not in clusters:
                raise Exit(1, f"ERROR: no nodes found for cluster {name!r}")
            clusters[name]["images"].append(image)
        else:
            raise Exit(1, f"fake kind: unsupported command {args}")


# --- kubectl -------------------------------------------------------------------------------------


def objects(cluster: dict[str, Any], kind_: str, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = cluster["objects"].setdefault(f"{kind_}/{namespace}", {})
    return found


def predictor_names(isvc: dict[str, Any]) -> list[str]:
    """Deployments/Services KServe runs for an InferenceService in Standard mode."""
    name, spec = isvc["metadata"]["name"], isvc["spec"]
    stable = spec["predictor"].get("name")
    names = [f"{name}-{stable}-predictor" if stable else f"{name}-predictor"]
    names += [f"{name}-{c['predictor']['name']}-predictor" for c in spec.get("canary", [])]
    return names


def predictor_pods(isvc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Predictor name -> its kserve-container (the canary's containers replace the stable ones)."""
    names = predictor_names(isvc)
    pods = {names[0]: isvc["spec"]["predictor"]["containers"][0]}
    for name, canary in zip(names[1:], isvc["spec"].get("canary", []), strict=True):
        pods[name] = canary["predictor"]["containers"][0]
    return pods


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def check_pod_can_run(cluster: dict[str, Any], container: dict[str, Any]) -> None:
    if container.get("imagePullPolicy") != "Never" or container["image"] not in cluster["images"]:
        raise Exit(
            1,
            f"error: deployment exceeded its progress deadline: ErrImageNeverPull / ImagePullBackOff "
            f"({container['image']}, pullPolicy {container.get('imagePullPolicy')})",
        )
    uri = env_of(container).get("STORAGE_URI", "")
    if uri.startswith("pvc://") and not cluster.get("model_store_seeded"):
        raise Exit(1, f"error: predictor crashed: no model.yaml under {uri}")


def find_isvc_by_predictor(cluster: dict[str, Any], namespace: str, predictor: str) -> dict[str, Any] | None:
    isvc: dict[str, Any]
    for isvc in objects(cluster, "InferenceService", namespace).values():
        if predictor in predictor_names(isvc):
            return isvc
    return None


def labels_match(obj: dict[str, Any], selector: str) -> bool:
    labels = obj["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))


def jsonpath(obj: dict[str, Any], path: str) -> str:
    """The few JSONPath expressions the hack/ scripts use."""
    status = obj.get("status", {})
    spec = obj.get("spec", {})
    values: dict[str, Any] = {
        "{.spec.predictor.name}": spec.get("predictor", {}).get("name", ""),
        "{.spec.canary[*].predictor.name}": " ".join(c["predictor"]["name"] for c in spec.get("canary", [])),
        "{.status.canaryStatuses[*].name}": " ".join(c["name"] for c in status.get("canaryStatuses", [])),
        '{range .status.canaryStatuses[*]}{.name}:{.ready}:{.trafficPercent}{" "}{end}': "".join(
            f"{c['name']}:{str(c['ready']).lower()}:{c['trafficPercent']} " for c in status.get("canaryStatuses", [])
        ),
    }
    condition = re.fullmatch(r'\{\.status\.conditions\[\?\(@\.type=="(\w+)"\)\]\.status\}', path)
    if condition is not None:
        return next((c["status"] for c in status.get("conditions", []) if c["type"] == condition[1]), "")
    if path not in values:
        raise Exit(1, f"fake kubectl: unsupported jsonpath {path}")
    return str(values[path])


def reconcile(isvc: dict[str, Any]) -> None:
    """What KServe reports once it has caught up with the spec."""
    canaries = isvc["spec"].get("canary", [])
    isvc["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    if canaries:
        isvc["status"]["conditions"].append({"type": "CanaryPredictorReady", "status": "True"})
        isvc["status"]["canaryStatuses"] = [
            {"name": c["predictor"]["name"], "ready": True, "trafficPercent": c["trafficPercent"]} for c in canaries
        ]


def kubectl(args: list[str]) -> None:
    context = take(args, "--context")
    namespace = take(args, "-n", "--namespace") or "default"
    take(args, "--request-timeout", "--timeout")
    with state() as data:
        if args[:2] == ["config", "current-context"]:
            if not data.get("current_context"):
                raise Exit(1, "error: current-context is not set")
            print(data["current_context"])
            return
        if args[:1] == ["kustomize"]:
            print(real_kubectl(args), end="")
            return
        cluster = cluster_of_context(data, context)
        kubectl_in(cluster, namespace, args)


def real_kubectl(args: list[str]) -> str:
    result = subprocess.run([os.environ["FAKE_REAL_KUBECTL"], *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise Exit(result.returncode, result.stderr)
    return result.stdout


def kubectl_in(cluster: dict[str, Any], namespace: str, args: list[str]) -> None:
    verb = args[0]
    if verb == "version":
        print("Server Version: v1.34.0")
    elif verb == "get":
        kubectl_get(cluster, namespace, args[1:])
    elif verb == "create" and args[1] == "namespace":
        cluster["namespaces"].append(args[2])
    elif verb == "create" and "--dry-run=server" in args:
        source = args[args.index("-f") + 1]
        doc = yaml.safe_load(sys.stdin.read() if source == "-" else Path(source).read_text())
        if not cluster.get("kserve"):
            raise Exit(1, "error: resource mapping not found for kind InferenceService")
        print(f"inferenceservice.serving.kserve.io/{doc['metadata']['name']}")
    elif verb == "apply" and "-k" in args:
        docs = [d for d in yaml.safe_load_all(real_kubectl(["kustomize", args[args.index("-k") + 1]])) if d]
        for doc in docs:
            ns = doc["metadata"].get("namespace", namespace)
            if doc["kind"] == "InferenceService":
                reconcile(doc)
            objects(cluster, doc["kind"], ns)[doc["metadata"]["name"]] = doc
    elif verb == "delete" and "-k" in args:
        docs = [d for d in yaml.safe_load_all(real_kubectl(["kustomize", args[args.index("-k") + 1]])) if d]
        for doc in docs:
            objects(cluster, doc["kind"], doc["metadata"].get("namespace", namespace)).pop(
                doc["metadata"]["name"], None
            )
    elif verb == "apply":
        kubectl_apply(cluster, namespace, args[args.index("-f") + 1])
    elif verb == "delete" and "-f" in args:
        source = args[args.index("-f") + 1]
        if source.endswith(("/kserve.yaml", "/kserve-crds.yaml")):  # the CRDs go with both
            cluster["kserve"] = False
            cluster["kserve_crds"] = False
        elif source.endswith("/cert-manager.yaml"):
            cluster["cert_manager"] = False
    elif verb == "delete":
        if args[1] == "inferenceservices":
            for key in [k for k in cluster["objects"] if k.startswith("InferenceService/")]:
                cluster["objects"][key] = {}
    elif verb == "wait":
        kubectl_wait(cluster, namespace, args[1:])
    elif verb == "rollout" and args[1] == "status":
        name = args[2].removeprefix("deployment/")
        isvc = find_isvc_by_predictor(cluster, namespace, name)
        if isvc is not None:
            check_pod_can_run(cluster, predictor_pods(isvc)[name])
        print(f'deployment "{name}" successfully rolled out')
    elif verb == "rollout" or verb == "patch":
        if verb == "patch":
            cluster["default_mode_patched"] = True
    elif verb == "port-forward":
        port_forward(cluster, namespace, args[1])
    elif verb == "logs" and args[1] == "job/servekit-models-seed":
        print("wrote /models/iris/v1: model 'iris' version 1\nwrote /models/iris/v2: model 'iris' version 2")
    elif verb in ("logs", "describe"):
        print(f"(fake {verb})")
    else:
        raise Exit(1, f"fake kubectl: unsupported command {args}")


def kubectl_get(cluster: dict[str, Any], namespace: str, args: list[str]) -> None:
    output = take(args, "-o") or ""
    selector = take(args, "-l")
    what = args[0]
    name = args[1] if len(args) > 1 else None
    if what == "namespace":
        if name not in cluster["namespaces"]:
            raise Exit(1, f'Error from server (NotFound): namespaces "{name}" not found')
    elif what == "crd":
        if not cluster.get("kserve_crds"):
            raise Exit(1, f'Error from server (NotFound): customresourcedefinitions "{name}" not found')
    elif what == "deployment" and name == "cert-manager":
        if not cluster.get("cert_manager"):
            raise Exit(1, "Error from server (NotFound)")
        print(CERT_MANAGER_VERSION, end="")
    elif what == "deployment" and name == "kserve-controller-manager":
        if not cluster.get("kserve"):
            raise Exit(1, "Error from server (NotFound)")
        print(f"kserve/kserve-controller:{KSERVE_VERSION}", end="")
    elif what == "configmap":
        mode = "Standard" if cluster.get("default_mode_patched") else "Serverless"
        print(json.dumps({"defaultDeploymentMode": mode}), end="")
    elif what == "validatingwebhookconfiguration":
        print("Y2EtYnVuZGxl" if cluster.get("kserve") else "", end="")
    elif what == "clusterservingruntimes":
        print("clusterservingruntime/kserve-sklearnserver" if cluster.get("cluster_resources") else "")
    elif what == "inferenceservices" and selector:
        found = [o for o in objects(cluster, "InferenceService", namespace).values() if labels_match(o, selector)]
        names = [o["metadata"]["name"] for o in found]
        if output == "name":
            print("".join(f"inferenceservice.serving.kserve.io/{n}\n" for n in names), end="")
        else:
            print(names[0] if output.endswith("{.items[0].metadata.name}") and names else " ".join(names), end="")
    elif what == "inferenceservice":
        isvc = objects(cluster, "InferenceService", namespace).get(name or "")
        if isvc is None:
            raise Exit(1, f'Error from server (NotFound): inferenceservices.serving.kserve.io "{name}" not found')
        if output == "yaml":
            print(yaml.safe_dump(isvc))
        else:
            print(jsonpath(isvc, output.removeprefix("jsonpath=")), end="")
    elif what == "deployments" and selector:
        isvc_name = dict(term.split("=", 1) for term in selector.split(","))["serving.kserve.io/inferenceservice"]
        isvc = objects(cluster, "InferenceService", namespace).get(isvc_name)
        print("".join(f"{n}\n" for n in predictor_names(isvc)) if isvc else "", end="")
    elif what in ("pods", "events"):
        print("(fake listing)")
    else:
        raise Exit(1, f"fake kubectl: unsupported get {args}")


def kubectl_apply(cluster: dict[str, Any], namespace: str, source: str) -> None:
    if source.endswith("/cert-manager.yaml"):
        if CERT_MANAGER_VERSION not in source:
            raise Exit(1, f"unexpected cert-manager manifest {source}")
        cluster["cert_manager"] = True
    elif source.endswith("/kserve-crds.yaml"):
        cluster["kserve_crds"] = True
    elif source.endswith("/kserve.yaml"):
        if not cluster.get("cert_manager"):
            raise Exit(1, 'error: resource mapping not found for kind "Issuer": ensure CRDs are installed first')
        if "kserve" not in cluster["namespaces"]:
            raise Exit(1, 'Error from server (NotFound): namespaces "kserve" not found')
        cluster["kserve"] = True
    elif source.endswith("/kserve-cluster-resources.yaml"):
        cluster["cluster_resources"] = True
    elif source.endswith("model-store.yaml"):
        for doc in yaml.safe_load_all(Path(source).read_text()):
            objects(cluster, doc["kind"], namespace)[doc["metadata"]["name"]] = doc
        cluster["model_store_seeded"] = True
    else:
        raise Exit(1, f"fake kubectl: unsupported apply of {source}")
    if KSERVE_VERSION not in source and "kserve" in source:
        raise Exit(1, f"unexpected KServe manifest {source}")


def kubectl_wait(cluster: dict[str, Any], namespace: str, args: list[str]) -> None:
    condition = next(a for a in args if a.startswith("--for=")).removeprefix("--for=")
    target = next(a for a in args if not a.startswith("-"))
    if target.startswith("inferenceservice/"):
        isvc = objects(cluster, "InferenceService", namespace).get(target.split("/", 1)[1])
        if isvc is None:
            raise Exit(1, f"error: {target} not found")
        for container in predictor_pods(isvc).values():
            check_pod_can_run(cluster, container)
        if condition == "condition=CanaryPredictorReady" and not isvc["spec"].get("canary"):
            raise Exit(1, "error: timed out waiting for the condition")
    elif target.startswith("job/") and not cluster.get("model_store_seeded"):
        raise Exit(1, f"error: {target} not found")


def port_forward(cluster: dict[str, Any], namespace: str, target: str) -> None:
    service = target.removeprefix("service/")
    isvc = find_isvc_by_predictor(cluster, namespace, service)
    if isvc is None:
        raise Exit(1, f'Error from server (NotFound): services "{service}" not found')
    forwards = cluster.setdefault("port_forwards", {})
    port = 40000 + len(forwards)
    forwards[str(port)] = {"namespace": namespace, "service": service}
    print(f"Forwarding from 127.0.0.1:{port} -> 8080\nForwarding from [::1]:{port} -> 8080", flush=True)
    raise Exit(-1)  # keep running, like kubectl, until killed


# --- helm ----------------------------------------------------------------------------------------


def typed(value: str) -> Any:
    """A --set value as Helm types it: true/false, null and whole numbers (no leading 0) are not strings."""
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    if re.fullmatch(r"-?[1-9][0-9]*|0", value):
        return int(value)
    return value


def set_value(values: dict[str, Any], assignment: str, as_string: bool = False) -> None:
    key, value = assignment.split("=", 1)
    *parents, leaf = key.split(".")
    node = values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value if as_string else typed(value)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def helm(args: list[str]) -> None:
    context = take(args, "--kube-context")
    namespace = take(args, "-n", "--namespace") or "default"
    if args[:2] == ["version", "--short"]:
        print("v3.16.3+gcfd0749")
        return
    with state() as data:
        cluster = cluster_of_context(data, context)
        releases = cluster.setdefault("releases", {})
        if args[:2] == ["upgrade", "--install"]:
            helm_upgrade(cluster, namespace, args[2:])
        elif args[0] == "test":
            release = releases.get(f"{namespace}/{args[1]}")
            if release is None:
                raise Exit(1, f"Error: release: not found: {args[1]}")
            if failure() == "helm-test":
                raise Exit(1, "Error: 1 error occurred:\n\t* pod iris-servekit-test-infer failed")
            print(f"NAME: {args[1]}\nPhase: Succeeded")
        elif args[0] == "status":
            if f"{namespace}/{args[1]}" not in releases:
                raise Exit(1, "Error: release: not found")
        elif args[0] == "uninstall":
            release = releases.pop(f"{namespace}/{args[1]}", None)
            for name in (release or {}).get("inferenceservices", []):
                objects(cluster, "InferenceService", namespace).pop(name, None)
        else:
            raise Exit(1, f"fake helm: unsupported command {args}")


def helm_upgrade(cluster: dict[str, Any], namespace: str, args: list[str]) -> None:
    import helm_python

    release, chart_dir = args[0], args[1]
    values: dict[str, Any] = {}
    assignments: list[tuple[str, bool]] = []
    rest = args[2:]
    while rest:
        flag, value = rest[0], rest[1]
        if flag in ("--values", "-f"):
            merge(values, yaml.safe_load(Path(value).read_text()) or {})
        elif flag in ("--set", "--set-string"):
            assignments.append((value, flag == "--set-string"))
        else:
            raise Exit(1, f"fake helm: unsupported flag {flag}")
        rest = rest[2:]
    for assignment, as_string in assignments:  # --set wins over --values, whatever the order
        set_value(values, assignment, as_string)
    if namespace not in cluster["namespaces"]:
        raise Exit(1, f'Error: create: failed to create: namespaces "{namespace}" not found')
    with helm_python.Chart.load(chart_dir) as chart:
        try:
            manifests = chart.render(values, name=release, namespace=namespace, is_install=True)
        except Exception as exc:
            raise Exit(1, f"Error: UPGRADE FAILED: {exc}") from None
    names = []
    for template, text in manifests.items():
        if template.endswith("NOTES.txt") or "/tests/" in template:
            continue
        for doc in yaml.safe_load_all(text):
            if doc and doc["kind"] == "InferenceService":
                reconcile(doc)
                objects(cluster, "InferenceService", namespace)[doc["metadata"]["name"]] = doc
                names.append(doc["metadata"]["name"])
    cluster.setdefault("releases", {})[f"{namespace}/{release}"] = {"values": values, "inferenceservices": names}
    print(f'Release "{release}" has been upgraded. Happy Helming!')


# --- curl ----------------------------------------------------------------------------------------


def curl(args: list[str]) -> None:
    body = take(args, "-d", "--data")
    url = next(a for a in args if a.startswith("http://"))
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/.*)", url)
    if match is None:
        raise Exit(7, f"curl: (7) Failed to connect to {url}")
    port, path = match.groups()
    with state() as data:
        forward = None
        for cluster in data["clusters"].values():
            forward = cluster.get("port_forwards", {}).get(port)
            if forward:
                break
        if forward is None:
            raise Exit(7, f"curl: (7) Failed to connect to 127.0.0.1 port {port}: Connection refused")
        isvc = find_isvc_by_predictor(cluster, forward["namespace"], forward["service"])
        if isvc is None:
            raise Exit(52, "curl: (52) Empty reply from server")
        container = predictor_pods(isvc)[forward["service"]]
    check_pod_can_run(cluster, container)
    version = "2" if env_of(container).get("STORAGE_URI", "").endswith("/v2") else "1"
    label = 2 if failure() == "wrong-label" else 0
    request = json.loads(body or "{}")
    if path == "/v2/models/iris/infer" and request.get("inputs"):
        reply: dict[str, Any] = {
            "model_name": "iris",
            "model_version": version,
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [1], "data": [label]},
                {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [0.98, 0.02, 0.0]},
            ],
        }
    elif path == "/v1/models/iris:predict" and request.get("instances"):
        reply = {"predictions": [label]}
    else:
        print(json.dumps({"error": f"bad request to {path}"}))
        raise Exit(22, "curl: (22) The requested URL returned error: 400")
    print(json.dumps(reply, separators=(",", ":")))


# --- entry point ---------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    with state() as data:
        data["calls"].append([tool, *args])
    try:
        {"docker": docker, "kind": kind, "kubectl": kubectl, "helm": helm, "curl": curl}[tool](list(args))
    except Exit as exc:
        if exc.code == -1:  # a port-forward: serve until killed
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while True:
                time.sleep(1)
        if exc.message:
            print(exc.message, file=sys.stderr)
        return exc.code
    return 0


def install(bin_dir: Path, state_file: Path) -> dict[str, str]:
    """Write the tool wrappers into bin_dir; returns the environment that puts them first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        wrapper = bin_dir / tool
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" {tool} "$@"\n')
        wrapper.chmod(0o755)
    return {"FAKE_CLUSTER_STATE": str(state_file), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def load_state(state_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(state_file.read_text())
    return data


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
