"""What an InferenceService says about its canary: ``view`` reads KServe's canary fields (both
modes) into one ``CanaryView``, the analysis's picture of stable and canary. Pure.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from predictor.canary.analysis import Variants
from predictor.canary.isvc_rules import (
    CANARY_PERCENT,
    PREDICTOR_CONTAINER,
    ChangeRefused,
    Mode,
    canaries,
    checksum,
    mode_of,
    predictor_checksum,
)
from predictor.canary.queries import Variant
from predictor.kube_object import Obj, name_of


@dataclass(frozen=True)
class CanaryView:
    """What the analysis needs to know of one InferenceService."""

    namespace: str
    isvc: str
    mode: Mode
    present: bool
    canary: str | None  # Standard: the canary predictor's name; Knative: the canary revision
    stable: str | None  # Standard: the stable predictor's name; Knative: the stable revision
    weight: int
    checksum: str  # of the canary's spec; "" without a canary
    ready: bool
    predictor_checksum: str  # of spec.predictor, traffic share left out
    restoring: bool = False  # Knative: a rolled-back spec waits at 0% for its revision
    serves: str = ""  # Standard: what spec.predictor serves (model location and image), hashed
    canary_serves: str = ""  # Standard: the same for the canary as KServe runs it

    def variants(self) -> Variants:
        knative = self.mode == Mode.KNATIVE
        if knative:
            canary = Variant(self.namespace, self.isvc, revision=self.canary)
            stable = Variant(self.namespace, self.isvc, revision=self.stable)
        else:
            canary = Variant(self.namespace, self.isvc, predictor=self.canary)
            stable = Variant(self.namespace, self.isvc, predictor=self.stable)
        return Variants(canary, stable, knative)

    def promoted(self, canary: str | None, canary_checksum: str, canary_serves: str = "") -> bool:
        """The canary of a rollout became the stable predictor (by us, or by hand). Standard: the
        stable predictor has the canary's name, or serves what the canary served (a canary of
        another image is promoted under the stable's name; ``canary_serves`` is "" when the canary
        served what the stable did, and only the name can tell)."""
        if self.present or self.restoring:
            return False
        if self.mode == Mode.STANDARD:
            same_serving = bool(canary_serves) and self.serves == canary_serves
            return canary is not None and (self.stable == canary or same_serving)
        return self.predictor_checksum == canary_checksum


def serves(predictor: Obj) -> str:
    """What a predictor serves, hashed: its model location and its predictor container's image."""
    container = predictor_container(predictor.get("containers") or [{}])
    return checksum([model_uri(predictor), container.get("image")])


def predictor_container(containers: list[Obj]) -> Obj:
    """The container that serves the model: ``kserve-container``, else the first."""
    return next((c for c in containers if c.get("name") == PREDICTOR_CONTAINER), containers[0])


def _standard_view(isvc: Obj, namespace: str, base: dict[str, Any]) -> CanaryView:
    entries = canaries(isvc)
    predictor = isvc.get("spec", {}).get("predictor", {})
    stable = predictor.get("name")
    base = {**base, "serves": serves(predictor)}
    if not entries:
        return CanaryView(namespace, name_of(isvc), Mode.STANDARD, False, None, stable, 0, "", False, **base)
    if len(entries) > 1:
        names = [entry.get("predictor", {}).get("name") for entry in entries]
        raise ChangeRefused(
            f"InferenceService {name_of(isvc)!r} has {len(entries)} canaries {names}; servekit-canary drives one"
        )
    (entry,) = entries
    name = entry.get("predictor", {}).get("name")
    statuses = {s.get("name"): s for s in isvc.get("status", {}).get("canaryStatuses") or []}
    ready = bool(statuses.get(name, {}).get("ready"))
    canary_serves = serves(promoted_predictor(predictor, entry.get("predictor", {})))
    return CanaryView(
        namespace, name_of(isvc), Mode.STANDARD, True, name, stable, int(entry.get("trafficPercent", 0)),
        checksum(entry.get("predictor", {})), ready, canary_serves=canary_serves, **base,
    )  # fmt: skip


def _knative_view(isvc: Obj, namespace: str, base: dict[str, Any], stable_checksum: str | None) -> CanaryView:
    predictor = isvc.get("spec", {}).get("predictor", {})
    component = isvc.get("status", {}).get("components", {}).get("predictor", {})
    traffic = component.get("traffic") or []
    previous = [t.get("revisionName") for t in traffic if t.get("tag") == "prev"]
    stable = previous[0] if previous else component.get("latestRolledoutRevision")
    created = component.get("latestCreatedRevision")
    generation = isvc.get("metadata", {}).get("generation")
    observed = isvc.get("status", {}).get("observedGeneration")
    current = generation is None or observed is None or observed >= generation
    ready = bool(created) and component.get("latestReadyRevision") == created and current
    percent = predictor.get(CANARY_PERCENT)
    restoring = percent is not None and base["predictor_checksum"] == stable_checksum
    present = percent is not None and not restoring
    return CanaryView(
        namespace, name_of(isvc), Mode.KNATIVE, present, created if present else None, stable,
        int(percent or 0) if present else 0, base["predictor_checksum"] if present else "", ready,
        restoring=restoring, **base,
    )  # fmt: skip


def view(isvc: Obj, stable_checksum: str | None = None) -> CanaryView:
    """The canary of an InferenceService. ``stable_checksum`` (Knative) is the predictor checksum of
    the last stable spec in the history: a 0% "canary" with that spec is a rollback settling."""
    namespace = str(isvc.get("metadata", {}).get("namespace", ""))
    base = {"predictor_checksum": predictor_checksum(isvc.get("spec", {}).get("predictor", {}))}
    if mode_of(isvc) == Mode.STANDARD:
        return _standard_view(isvc, namespace, base)
    return _knative_view(isvc, namespace, base, stable_checksum)


def model_uri(predictor: Obj) -> str | None:
    """Where a predictor's model is: ``model.storageUri``, or a container's STORAGE_URI (custom predictors)."""
    if predictor.get("model", {}).get("storageUri"):
        return str(predictor["model"]["storageUri"])
    for container in predictor.get("containers") or []:
        for item in container.get("env", []):
            if item.get("name") == "STORAGE_URI" and item.get("value"):
                return str(item["value"])
    return None


def merge_predictor(stable: Obj, overrides: Obj) -> Obj:
    """KServe's canary predictor: the stable spec with the overrides on top (maps merge, lists and
    scalars replace)."""
    merged = copy.deepcopy(stable)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_predictor(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def promoted_predictor(stable: Obj, canary: Obj) -> Obj:
    """``spec.predictor`` once the canary is promoted: its overrides merged over the stable, under its name."""
    # minReplicas on the canary sized it next to the stable; the promoted one keeps the stable's.
    promoted = merge_predictor(stable, {k: v for k, v in canary.items() if k != "minReplicas"})
    if model_uri(promoted) == model_uri(stable):
        # KServe's webhook refuses a new predictor.name without a new model ("predictor.name change
        # requires a model change"): a canary of another image only rolls the stable predictor.
        promoted["name"] = stable.get("name")
    return promoted
