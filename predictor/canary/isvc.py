"""KServe's own canary fields, read and changed as plain InferenceService dicts (pure).

Standard mode: ``spec.canary[]{predictor{name, ...overrides}, trafficPercent}``. Promote = the
canary's overrides merged over the stable predictor become ``spec.predictor`` under the canary's
name (under the stable's own name when the model is the same: KServe renames only with a new
model), entry dropped; rollback = entry dropped.

Knative mode: ``spec.predictor.canaryTrafficPercent``. Promote = field removed; rollback = 0 with
the previous predictor spec restored under it, and the field removed once KServe reports the
restored revision ready (so no request reaches the failed revision in between).

Every function returns a new dict and leaves its argument alone; every result is checked against
the rules KServe's admission webhook enforces, so a bad change fails here, before the API server.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from predictor.canary.analysis import Variants
from predictor.canary.queries import Variant

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
CANARY_PERCENT = "canaryTrafficPercent"
PREDICTOR_CONTAINER = "kserve-container"
# The webhook refuses these on a canary entry: the stable predictor's autoscaler sizes both.
AUTOSCALING_FIELDS = ("maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling")

Obj = dict[str, Any]


class Mode(StrEnum):
    STANDARD = "Standard"
    KNATIVE = "Knative"


_MODE_NAMES = {"Standard": Mode.STANDARD, "RawDeployment": Mode.STANDARD, "Knative": Mode.KNATIVE}
_MODE_NAMES["Serverless"] = Mode.KNATIVE


class SpecError(ValueError):
    """The InferenceService cannot take this change; the message says why and what would do."""


class NoCanary(SpecError):
    """There is no canary to change."""


def name_of(isvc: Obj) -> str:
    return str(isvc.get("metadata", {}).get("name", "?"))


def mode_of(isvc: Obj) -> Mode:
    """The deployment mode from the annotation (or what KServe wrote in the status)."""
    declared = isvc.get("metadata", {}).get("annotations", {}).get(MODE_ANNOTATION)
    declared = declared or isvc.get("status", {}).get("deploymentMode")
    if declared in _MODE_NAMES:
        return _MODE_NAMES[declared]
    spec = isvc.get("spec", {})
    if spec.get("canary"):
        return Mode.STANDARD
    if CANARY_PERCENT in spec.get("predictor", {}):
        return Mode.KNATIVE
    raise SpecError(
        f"InferenceService {name_of(isvc)!r}: deployment mode {declared!r} is unknown; set the annotation "
        f"{MODE_ANNOTATION} to Standard or Knative (KServe's default depends on its config)"
    )


def checksum(spec: Any) -> str:
    """A short, stable hash of a spec (Flagger's ``checksum`` in webhook payloads)."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def predictor_checksum(predictor: Obj) -> str:
    """Identity of a predictor spec, whatever share of traffic it is given."""
    return checksum({k: v for k, v in predictor.items() if k != CANARY_PERCENT})


def _canaries(isvc: Obj) -> list[Obj]:
    return list(isvc.get("spec", {}).get("canary") or [])


def _int_in_range(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100


def kserve_problems(isvc: Obj) -> list[str]:
    """What KServe's webhook would refuse (or silently ignore) in the canary fields."""
    mode = mode_of(isvc)
    spec = isvc.get("spec", {})
    stable = spec.get("predictor", {})
    entries = _canaries(isvc)
    problems = []
    if entries and mode != Mode.STANDARD:
        problems.append("spec.canary is only supported in Standard mode (Knative mode uses canaryTrafficPercent)")
    if mode == Mode.STANDARD and CANARY_PERCENT in stable:
        problems.append("spec.predictor.canaryTrafficPercent is ignored by KServe in Standard mode; use spec.canary")
    if CANARY_PERCENT in stable and not _int_in_range(stable[CANARY_PERCENT]):
        problems.append(f"spec.predictor.canaryTrafficPercent is {stable[CANARY_PERCENT]!r}, expected 0..100")
    names: list[Any] = []
    for index, entry in enumerate(entries):
        where = f"spec.canary[{index}]"
        predictor = entry.get("predictor") or {}
        name = predictor.get("name")
        if not name:
            problems.append(f"{where}.predictor.name is required")
        elif name in names:
            problems.append(f"{where}.predictor.name {name!r} is used twice")
        elif name == stable.get("name"):
            problems.append(f"{where}.predictor.name {name!r} must differ from spec.predictor.name")
        names.append(name)
        if not _int_in_range(entry.get("trafficPercent")):
            problems.append(f"{where}.trafficPercent is {entry.get('trafficPercent')!r}, expected 0..100")
        refused = [field for field in AUTOSCALING_FIELDS if field in predictor]
        if refused:
            problems.append(f"{where}.predictor sets {', '.join(refused)}: a canary takes the stable's autoscaling")
        if predictor.get("minReplicas", 0) > stable.get("minReplicas", 1):
            problems.append(
                f"{where}.predictor.minReplicas {predictor['minReplicas']} is above the stable's "
                f"{stable.get('minReplicas', 1)}"
            )
    total = sum(entry.get("trafficPercent", 0) for entry in entries if _int_in_range(entry.get("trafficPercent")))
    if total > 100:
        problems.append(f"the canaries' trafficPercent add up to {total}, above 100")
    if entries and not stable.get("name"):
        problems.append("spec.predictor.name is required next to spec.canary (it names the stable's objects)")
    return problems


def _checked(isvc: Obj) -> Obj:
    problems = kserve_problems(isvc)
    if problems:
        raise SpecError(f"InferenceService {name_of(isvc)!r}: " + "; ".join(problems))
    return isvc


# --- reading ------------------------------------------------------------------------------------


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
    container = _predictor_container(predictor.get("containers") or [{}])
    return checksum([model_uri(predictor), container.get("image")])


def _predictor_container(containers: list[Obj]) -> Obj:
    """The container that serves the model: ``kserve-container``, else the first."""
    return next((c for c in containers if c.get("name") == PREDICTOR_CONTAINER), containers[0])


def _standard_view(isvc: Obj, namespace: str, base: dict[str, Any]) -> CanaryView:
    entries = _canaries(isvc)
    predictor = isvc.get("spec", {}).get("predictor", {})
    stable = predictor.get("name")
    base = {**base, "serves": serves(predictor)}
    if not entries:
        return CanaryView(namespace, name_of(isvc), Mode.STANDARD, False, None, stable, 0, "", False, **base)
    if len(entries) > 1:
        names = [entry.get("predictor", {}).get("name") for entry in entries]
        raise SpecError(
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


# --- changing -----------------------------------------------------------------------------------


def _with_overrides(predictor: Obj, storage_uri: str | None, image: str | None) -> Obj:
    """A copy of a predictor spec with another model location and/or image."""
    changed = copy.deepcopy(predictor)
    if "model" in changed and not changed.get("containers"):
        if image:
            raise SpecError("--image needs a custom-container predictor (spec.predictor.containers)")
        if storage_uri:
            changed["model"]["storageUri"] = storage_uri
        return changed
    containers = changed.get("containers") or []
    if not containers:
        raise SpecError("spec.predictor has neither containers nor model: nothing to change")
    container = _predictor_container(containers)
    if image:
        container["image"] = image
    if storage_uri:
        env = [item for item in container.get("env", []) if item.get("name") != "STORAGE_URI"]
        container["env"] = [{"name": "STORAGE_URI", "value": storage_uri}, *env]
    return changed


def model_uri(predictor: Obj) -> str | None:
    """Where a predictor's model is: ``model.storageUri``, or a container's STORAGE_URI (custom predictors)."""
    if predictor.get("model", {}).get("storageUri"):
        return str(predictor["model"]["storageUri"])
    for container in predictor.get("containers") or []:
        for item in container.get("env", []):
            if item.get("name") == "STORAGE_URI" and item.get("value"):
                return str(item["value"])
    return None


def start(isvc: Obj, name: str, storage_uri: str | None = None, image: str | None = None, weight: int = 0) -> Obj:
    """A new canary with another model and/or image, at ``weight`` percent. The same start again
    changes nothing (a retried command is harmless); another one over a canary is refused."""
    if not (storage_uri or image):
        raise SpecError("give --storage-uri or --image (or both): a canary like the stable one tests nothing")
    _check_weight(weight)
    current = view(isvc)
    changed = _with_canary(isvc, current.mode, name, storage_uri, image, weight)
    if current.present:
        if changed == isvc:
            return changed
        raise SpecError(
            f"InferenceService {name_of(isvc)!r} already has a canary {current.canary!r}: promote or roll it back first"
        )
    return _checked(changed)


def _with_canary(isvc: Obj, mode: Mode, name: str, storage_uri: str | None, image: str | None, weight: int) -> Obj:
    changed = copy.deepcopy(isvc)
    stable = changed["spec"]["predictor"]
    if mode == Mode.KNATIVE:
        changed["spec"]["predictor"] = {**_with_overrides(stable, storage_uri, image), CANARY_PERCENT: weight}
        return changed
    if not stable.get("name"):
        raise SpecError("a Standard-mode canary needs spec.predictor.name: name the stable predictor first")
    if not model_uri(stable):
        raise SpecError(
            "KServe needs the stable predictor's model from storage (STORAGE_URI) for a Standard-mode canary"
        )
    overrides = _with_overrides({k: v for k, v in stable.items() if k in ("containers", "model")}, storage_uri, image)
    if stable.get("minReplicas", 1) >= 1:
        # KServe sizes a canary without minReplicas by its share of the stable's: no pod at all
        # at 0%, so it never becomes ready and a rollout could not begin. (The webhook refuses a
        # canary minReplicas above the stable's, so a scale-to-zero stable gets none.)
        overrides["minReplicas"] = 1
    changed["spec"]["canary"] = [{"trafficPercent": weight, "predictor": {"name": name, **overrides}}]
    return changed


def _check_weight(weight: int) -> None:
    if not _int_in_range(weight):
        raise SpecError(f"weight {weight!r} must be an integer from 0 to 100")


def _require_canary(isvc: Obj, action: str) -> CanaryView:
    current = view(isvc)
    if not current.present:
        raise NoCanary(f"InferenceService {name_of(isvc)!r} has no canary to {action}")
    return current


def set_weight(isvc: Obj, weight: int) -> Obj:
    _check_weight(weight)
    current = _require_canary(isvc, "weigh")
    changed = copy.deepcopy(isvc)
    if current.mode == Mode.KNATIVE:
        changed["spec"]["predictor"][CANARY_PERCENT] = weight
    else:
        changed["spec"]["canary"][0]["trafficPercent"] = weight
    return _checked(changed)


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


def promote(isvc: Obj) -> Obj:
    current = _require_canary(isvc, "promote")
    changed = copy.deepcopy(isvc)
    spec = changed["spec"]
    if current.mode == Mode.KNATIVE:
        del spec["predictor"][CANARY_PERCENT]
        return _checked(changed)
    spec["predictor"] = promoted_predictor(spec["predictor"], spec["canary"][0]["predictor"])
    del spec["canary"]
    return _checked(changed)


def promoted_predictor(stable: Obj, canary: Obj) -> Obj:
    """``spec.predictor`` once the canary is promoted: its overrides merged over the stable, under its name."""
    # minReplicas on the canary sized it next to the stable; the promoted one keeps the stable's.
    promoted = merge_predictor(stable, {k: v for k, v in canary.items() if k != "minReplicas"})
    if model_uri(promoted) == model_uri(stable):
        # KServe's webhook refuses a new predictor.name without a new model ("predictor.name change
        # requires a model change"): a canary of another image only rolls the stable predictor.
        promoted["name"] = stable.get("name")
    return promoted


def rollback(isvc: Obj, previous_predictor: Obj | None = None) -> Obj:
    """Standard: drop the canary. Knative: 0%, and the previous predictor spec (if known) restored
    under it; ``settle`` removes the 0% once its revision is ready."""
    current = _require_canary(isvc, "roll back")
    changed = copy.deepcopy(isvc)
    if current.mode == Mode.STANDARD:
        del changed["spec"]["canary"]
    elif previous_predictor is not None:
        restored = {k: v for k, v in previous_predictor.items() if k != CANARY_PERCENT}
        changed["spec"]["predictor"] = {**copy.deepcopy(restored), CANARY_PERCENT: 0}
    else:
        changed["spec"]["predictor"][CANARY_PERCENT] = 0
    return _checked(changed)


def settle(isvc: Obj, stable_checksum: str | None) -> Obj | None:
    """Knative: drop the 0% of a restored spec once its revision is ready; None when not yet."""
    current = view(isvc, stable_checksum)
    if not (current.restoring and current.ready):
        return None
    changed = copy.deepcopy(isvc)
    del changed["spec"]["predictor"][CANARY_PERCENT]
    return _checked(changed)


def restore(isvc: Obj, predictor: Obj, canary: list[Obj] | None) -> Obj:
    """The predictor (and Standard-mode canary) specs of a history entry, written back."""
    changed = copy.deepcopy(isvc)
    changed["spec"]["predictor"] = copy.deepcopy(predictor)
    if canary:
        changed["spec"]["canary"] = copy.deepcopy(canary)
    else:
        changed["spec"].pop("canary", None)
    return _checked(changed)
