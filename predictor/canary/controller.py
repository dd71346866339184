"""``servekit-canary controller``: runs the analysis of every CanaryAnalysis, with kopf.

Each CanaryAnalysis names one InferenceService. A kopf timer looks at it every ``--tick`` seconds;
``reconcile`` (a plain function) reads the rollout's state from the object's status, takes one
step of the same state machine as ``servekit-canary run``, and returns the new status. Nothing
lives in memory between looks, so a restarted controller carries on where the last one stopped.
Decisions are recorded as Kubernetes Events on the InferenceService.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from predictor.canary import rollout
from predictor.canary.history import timestamp
from predictor.canary.isvc import ChangeRefused
from predictor.canary.kube import ANALYSIS_GROUP, ANALYSIS_PLURAL, ANALYSIS_VERSION, merge_patch
from predictor.canary.rollout import ApiError, Edges
from predictor.canary.spec import CanaryAnalysisSpec
from predictor.canary.state import STATUS_NAME, TIME, Phase, RolloutState

logger = logging.getLogger("predictor.canary")

EdgesFor = Callable[[CanaryAnalysisSpec], Edges]
PROMOTED_CONDITION = "Promoted"
_CONDITION_STATUS = {Phase.SUCCEEDED: "True", Phase.FAILED: "False"}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


# status field <- RolloutState field, derived from the dataclass so that a field added to the state
# reaches the status (and survives a restart) without a list to keep up to date; times are RFC 3339
# in the status, epoch seconds in the state.
STATUS_FIELDS = {
    item.metadata.get(STATUS_NAME, _camel(item.name)): item.name
    for item in dataclasses.fields(RolloutState)
    if not item.metadata.get(TIME)
}
TIME_FIELDS = {
    item.metadata.get(STATUS_NAME, _camel(item.name)): item.name
    for item in dataclasses.fields(RolloutState)
    if item.metadata.get(TIME)
}


def _to_time(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def state_from_status(status: dict[str, Any] | None) -> RolloutState:
    status = status or {}
    data: dict[str, Any] = {ours: status[theirs] for theirs, ours in STATUS_FIELDS.items() if theirs in status}
    data |= {ours: _to_time(status.get(theirs)) for theirs, ours in TIME_FIELDS.items()}
    return RolloutState.from_dict(data)


def _condition(state: RolloutState, previous: list[dict[str, Any]], now: float) -> dict[str, Any]:
    value = _CONDITION_STATUS.get(state.phase, "Unknown")
    old = next((c for c in previous if c.get("type") == PROMOTED_CONDITION), {})
    since = old.get("lastTransitionTime") if old.get("status") == value else timestamp(now)
    return {
        "type": PROMOTED_CONDITION,
        "status": value,
        "reason": str(state.phase),
        "message": state.message[:1024],
        "lastTransitionTime": since or timestamp(now),
    }


def status_from_state(
    state: RolloutState, previous: dict[str, Any], generation: int | None, now: float
) -> dict[str, Any]:
    data = state.to_dict()
    status: dict[str, Any] = {theirs: data[ours] for theirs, ours in STATUS_FIELDS.items() if data[ours] is not None}
    status |= {theirs: timestamp(data[ours]) for theirs, ours in TIME_FIELDS.items() if data[ours] is not None}
    status["conditions"] = [_condition(state, previous.get("conditions") or [], now)]
    if generation is not None:
        status["observedGeneration"] = generation
    return status


def reconcile(body: dict[str, Any], edges_for: EdgesFor) -> dict[str, Any]:
    """One look at a CanaryAnalysis: the status it should have next."""
    meta, previous = body.get("metadata", {}), dict(body.get("status") or {})
    namespace = meta.get("namespace", "default")
    try:
        spec = CanaryAnalysisSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return {**previous, "message": f"invalid spec: {problems}"}
    current = state_from_status(previous)
    try:
        edges = edges_for(spec)
        after = rollout.step(edges, spec, namespace, spec.inference_service, current)
    except (ApiError, ChangeRefused) as exc:
        logger.warning("CanaryAnalysis %s/%s: %s", namespace, meta.get("name"), exc)
        return {**previous, "message": f"error, retrying: {exc}"}
    return status_from_state(after, previous, meta.get("generation"), edges.clock())


def on_timer(body: Any, patch: Any, memo: Any, **_: Any) -> None:
    """The kopf timer handler: one reconcile, written as a merge patch of the status."""
    old = dict(body.get("status") or {})
    new = reconcile(dict(body), memo["edges_for"])
    changes = merge_patch(old, new)
    if changes:
        patch.status.update(changes)


# --- wiring -----------------------------------------------------------------------------------------


def add_controller_command(commands: Any) -> None:
    text = "run the controller: analyse every CanaryAnalysis and promote or roll back its InferenceService"
    sub = commands.add_parser("controller", help=text, description=text)
    sub.add_argument(
        "-n", "--namespace", action="append", help="watch this namespace (repeatable; default $POD_NAMESPACE)"
    )
    sub.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (needs a ClusterRole)")
    sub.add_argument("--selector", help="only CanaryAnalyses with these labels, e.g. app.kubernetes.io/instance=iris")
    sub.add_argument("--prometheus-url", help="Prometheus for analyses without spec.prometheusUrl")
    sub.add_argument(
        "--tick", type=float, default=10.0, help="seconds between looks at each CanaryAnalysis (default 10)"
    )
    sub.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then $KUBECONFIG)")
    sub.add_argument("--context", help="kubeconfig context")
    sub.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="kopf's liveness endpoint")


def parse_selector(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--selector {text!r}: expected key=value[,key=value]")
        labels[key.strip()] = value.strip()
    return labels


def edges_factory(client: Any, default_prometheus: str | None) -> EdgesFor:
    from predictor.canary.kube import KubeEvents, KubeHistory, KubeInferenceServices
    from predictor.canary.prometheus import PrometheusSource
    from predictor.canary.webhooks import HttpWebhooks

    isvcs, entries, events, hooks = (
        KubeInferenceServices(client),
        KubeHistory(client),
        KubeEvents(client),
        HttpWebhooks(),
    )
    sources: dict[str, PrometheusSource] = {}

    def edges_for(spec: CanaryAnalysisSpec) -> Edges:
        url = spec.prometheus_url or default_prometheus
        if url is None:
            raise ApiError("no Prometheus: set spec.prometheusUrl or start the controller with --prometheus-url")
        source = sources.setdefault(url, PrometheusSource(url))
        return Edges(isvcs, entries, events, source, hooks)

    return edges_for


def build_registry(args: argparse.Namespace) -> Any:
    """kopf's registry: the timer on canaryanalyses, the settings, the login from our kubeconfig."""
    import kopf

    registry = kopf.OperatorRegistry()
    labels = parse_selector(args.selector)
    kopf.timer(
        ANALYSIS_GROUP, ANALYSIS_VERSION, ANALYSIS_PLURAL, interval=args.tick, labels=labels or None, registry=registry
    )(on_timer)
    _timers_without_finalizer(registry)

    def configure(settings: Any, **_: Any) -> None:
        settings.peering.standalone = True  # one replica (Recreate); no peering CRD to install
        settings.scanning.disabled = True  # a namespaced Role cannot list namespaces or CRDs
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="servekit.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="servekit.dev")

    def login(**_: Any) -> Any:
        from predictor.canary.kube import api_client

        config = api_client(args.kubeconfig, args.context).configuration
        header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
        scheme, _space, token = (header or "").rpartition(" ")
        return kopf.ConnectionInfo(
            server=config.host, ca_path=config.ssl_ca_cert, insecure=not config.verify_ssl,
            username=config.username or None, password=config.password or None, scheme=scheme or None,
            token=token or None, certificate_path=config.cert_file, private_key_path=config.key_file,
        )  # fmt: skip

    kopf.on.startup(registry=registry)(configure)
    kopf.on.login(registry=registry)(login)
    return registry


def _timers_without_finalizer(registry: Any) -> None:
    """kopf puts a finalizer on every object a timer watches, to stop the timer before the object
    goes, and offers no flag against it. Ours keeps nothing in memory to stop, and the finalizer
    would keep a CanaryAnalysis (and so its namespace) from being deleted whenever no controller
    runs: after `helm uninstall` stopped it first, or with the controller scaled to zero. A
    controller started with this registry also removes the finalizer an older one left."""
    handlers = getattr(getattr(registry, "_spawning", None), "_handlers", None)
    if not isinstance(handlers, list) or not all(hasattr(h, "requires_finalizer") for h in handlers):
        # A private part of kopf's registry: say so plainly if a kopf release moves it.
        raise RuntimeError(f"kopf {kopf_version()} keeps its timers elsewhere: cannot turn their finalizer off")
    handlers[:] = [dataclasses.replace(h, requires_finalizer=False) for h in handlers]


def kopf_version() -> str:
    from importlib.metadata import version

    return version("kopf")


def run_controller(args: argparse.Namespace) -> int:
    import kopf

    from predictor.canary.kube import api_client

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    namespaces = args.namespace or [os.environ.get("POD_NAMESPACE", "default")]
    try:
        registry = build_registry(args)
        client = api_client(args.kubeconfig, args.context)
    except (ValueError, ApiError) as exc:
        print(f"servekit-canary controller: error: {exc}", flush=True)
        return 2
    memo = kopf.Memo(edges_for=edges_factory(client, args.prometheus_url))
    kopf.run(
        registry=registry, standalone=True, clusterwide=args.all_namespaces,
        namespaces=[] if args.all_namespaces else namespaces, liveness_endpoint=args.liveness, memo=memo,
    )  # fmt: skip
    return 0
