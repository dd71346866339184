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

# The reading half and KServe's rules live beside this module; their names are re-exported so
# callers keep one import for "the InferenceService's canary fields".
from predictor.canary.isvc_rules import (
    AUTOSCALING_FIELDS,
    CANARY_PERCENT,
    MODE_ANNOTATION,
    PREDICTOR_CONTAINER,
    ChangeRefused,
    Mode,
    NoCanary,
    checked,
    checksum,
    is_percent,
    kserve_problems,
    mode_of,
    predictor_checksum,
)
from predictor.canary.isvc_view import (
    CanaryView,
    merge_predictor,
    model_uri,
    predictor_container,
    promoted_predictor,
    serves,
    view,
)
from predictor.kube_object import Obj, name_of

__all__ = [
    "AUTOSCALING_FIELDS",
    "CANARY_PERCENT",
    "MODE_ANNOTATION",
    "PREDICTOR_CONTAINER",
    "CanaryView",
    "ChangeRefused",
    "Mode",
    "NoCanary",
    "Obj",
    "checksum",
    "kserve_problems",
    "merge_predictor",
    "mode_of",
    "model_uri",
    "predictor_checksum",
    "promote",
    "promoted_predictor",
    "restore",
    "rollback",
    "serves",
    "set_weight",
    "settle",
    "start",
    "view",
]


def _with_overrides(predictor: Obj, storage_uri: str | None, image: str | None) -> Obj:
    """A copy of a predictor spec with another model location and/or image."""
    changed = copy.deepcopy(predictor)
    if "model" in changed and not changed.get("containers"):
        if image:
            raise ChangeRefused("--image needs a custom-container predictor (spec.predictor.containers)")
        if storage_uri:
            changed["model"]["storageUri"] = storage_uri
        return changed
    containers = changed.get("containers") or []
    if not containers:
        raise ChangeRefused("spec.predictor has neither containers nor model: nothing to change")
    container = predictor_container(containers)
    if image:
        container["image"] = image
    if storage_uri:
        env = [item for item in container.get("env", []) if item.get("name") != "STORAGE_URI"]
        container["env"] = [{"name": "STORAGE_URI", "value": storage_uri}, *env]
    return changed


def start(isvc: Obj, name: str, storage_uri: str | None = None, image: str | None = None, weight: int = 0) -> Obj:
    """A new canary with another model and/or image, at ``weight`` percent. The same start again
    changes nothing (a retried command is harmless); another one over a canary is refused."""
    if not (storage_uri or image):
        raise ChangeRefused("give --storage-uri or --image (or both): a canary like the stable one tests nothing")
    _check_weight(weight)
    current = view(isvc)
    changed = _with_canary(isvc, current.mode, name, storage_uri, image, weight)
    if current.present:
        if changed == isvc:
            return changed
        raise ChangeRefused(
            f"InferenceService {name_of(isvc)!r} already has a canary {current.canary!r}: promote or roll it back first"
        )
    return checked(changed)


def _with_canary(isvc: Obj, mode: Mode, name: str, storage_uri: str | None, image: str | None, weight: int) -> Obj:
    changed = copy.deepcopy(isvc)
    stable = changed["spec"]["predictor"]
    if mode == Mode.KNATIVE:
        changed["spec"]["predictor"] = {**_with_overrides(stable, storage_uri, image), CANARY_PERCENT: weight}
        return changed
    if not stable.get("name"):
        raise ChangeRefused("a Standard-mode canary needs spec.predictor.name: name the stable predictor first")
    if not model_uri(stable):
        raise ChangeRefused(
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
    if not is_percent(weight):
        raise ChangeRefused(f"weight {weight!r} must be an integer from 0 to 100")


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
    return checked(changed)


def promote(isvc: Obj) -> Obj:
    current = _require_canary(isvc, "promote")
    changed = copy.deepcopy(isvc)
    spec = changed["spec"]
    if current.mode == Mode.KNATIVE:
        del spec["predictor"][CANARY_PERCENT]
        return checked(changed)
    spec["predictor"] = promoted_predictor(spec["predictor"], spec["canary"][0]["predictor"])
    del spec["canary"]
    return checked(changed)


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
    return checked(changed)


def settle(isvc: Obj, stable_checksum: str | None) -> Obj | None:
    """Knative: drop the 0% of a restored spec once its revision is ready; None when not yet."""
    current = view(isvc, stable_checksum)
    if not (current.restoring and current.ready):
        return None
    changed = copy.deepcopy(isvc)
    del changed["spec"]["predictor"][CANARY_PERCENT]
    return checked(changed)


def restore(isvc: Obj, predictor: Obj, canary: list[Obj] | None) -> Obj:
    """The predictor (and Standard-mode canary) specs of a history entry, written back."""
    changed = copy.deepcopy(isvc)
    changed["spec"]["predictor"] = copy.deepcopy(predictor)
    if canary:
        changed["spec"]["canary"] = copy.deepcopy(canary)
    else:
        changed["spec"].pop("canary", None)
    return checked(changed)
