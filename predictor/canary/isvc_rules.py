"""What KServe accepts in an InferenceService's canary fields: the deployment modes, the rules its
admission webhook enforces, and the identity (checksum) of a predictor spec. Pure functions of dicts.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from predictor.kube_object import Obj, name_of

MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
CANARY_PERCENT = "canaryTrafficPercent"
PREDICTOR_CONTAINER = "kserve-container"
# The webhook refuses these on a canary entry: the stable predictor's autoscaler sizes both.
AUTOSCALING_FIELDS = ("maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling")


class Mode(StrEnum):
    STANDARD = "Standard"
    KNATIVE = "Knative"


_MODE_NAMES = {"Standard": Mode.STANDARD, "RawDeployment": Mode.STANDARD, "Knative": Mode.KNATIVE}
_MODE_NAMES["Serverless"] = Mode.KNATIVE


class ChangeRefused(ValueError):
    """The InferenceService cannot take this change; the message says why and what would do."""


class NoCanary(ChangeRefused):
    """There is no canary to change."""


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
    raise ChangeRefused(
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


def canaries(isvc: Obj) -> list[Obj]:
    return list(isvc.get("spec", {}).get("canary") or [])


def is_percent(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100


def kserve_problems(isvc: Obj) -> list[str]:
    """What KServe's webhook would refuse (or silently ignore) in the canary fields."""
    mode = mode_of(isvc)
    spec = isvc.get("spec", {})
    stable = spec.get("predictor", {})
    entries = canaries(isvc)
    problems = []
    if entries and mode != Mode.STANDARD:
        problems.append("spec.canary is only supported in Standard mode (Knative mode uses canaryTrafficPercent)")
    if mode == Mode.STANDARD and CANARY_PERCENT in stable:
        problems.append("spec.predictor.canaryTrafficPercent is ignored by KServe in Standard mode; use spec.canary")
    if CANARY_PERCENT in stable and not is_percent(stable[CANARY_PERCENT]):
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
        if not is_percent(entry.get("trafficPercent")):
            problems.append(f"{where}.trafficPercent is {entry.get('trafficPercent')!r}, expected 0..100")
        refused = [field for field in AUTOSCALING_FIELDS if field in predictor]
        if refused:
            problems.append(f"{where}.predictor sets {', '.join(refused)}: a canary takes the stable's autoscaling")
        if predictor.get("minReplicas", 0) > stable.get("minReplicas", 1):
            problems.append(
                f"{where}.predictor.minReplicas {predictor['minReplicas']} is above the stable's "
                f"{stable.get('minReplicas', 1)}"
            )
    total = sum(entry.get("trafficPercent", 0) for entry in entries if is_percent(entry.get("trafficPercent")))
    if total > 100:
        problems.append(f"the canaries' trafficPercent add up to {total}, above 100")
    if entries and not stable.get("name"):
        problems.append("spec.predictor.name is required next to spec.canary (it names the stable's objects)")
    return problems


def checked(isvc: Obj) -> Obj:
    problems = kserve_problems(isvc)
    if problems:
        raise ChangeRefused(f"InferenceService {name_of(isvc)!r}: " + "; ".join(problems))
    return isvc
