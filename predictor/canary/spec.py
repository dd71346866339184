"""The analysis settings of one canary rollout, shared by the CLI flags and the CanaryAnalysis CRD.

Field names follow Flagger's analysis (interval, threshold, stepWeights, maxWeight, metrics with
threshold ranges, webhooks) so its users know them; the CRD spells them in camelCase.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from predictor.canary import queries

HookType = Literal["pre-rollout", "confirm-rollout", "confirm-promotion", "rollback", "event"]
HOOK_TYPES: tuple[HookType, ...] = ("pre-rollout", "confirm-rollout", "confirm-promotion", "rollback", "event")

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str | float) -> float:
    """Seconds from ``90``, ``"90"``, ``"30s"``, ``"1m"``, ``"1m30s"`` or ``"2h"`` (Prometheus' style)."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        value = text.strip()
        if re.fullmatch(r"\d+(\.\d+)?", value):
            seconds = float(value)
        else:
            match = _DURATION.fullmatch(value)
            if not value or match is None:
                raise ValueError(f"duration {text!r}: expected seconds or a duration like 30s, 1m, 1m30s, 2h")
            hours, minutes, secs = (float(part or 0) for part in match.groups())
            seconds = hours * 3600 + minutes * 60 + secs
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """A PromQL range (``[30s]``, ``[2m]``): whole seconds, at least one."""
    whole = max(1, round(seconds))
    return f"{whole // 60}m" if whole % 60 == 0 else f"{whole}s"


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class MetricCheck(_Camel):
    """A custom PromQL check: its value must lie in [min, max] (Flagger's thresholdRange)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[a-z0-9]([-a-z0-9_]*[a-z0-9])?$")]
    query: Annotated[
        str, Field(min_length=1, description="PromQL; may use $selector, $stable_selector, $window, $namespace, ...")
    ]
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> MetricCheck:
        if self.min is None and self.max is None:
            raise ValueError(f"metric check {self.name!r} needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"metric check {self.name!r}: min {self.min} is above max {self.max}")
        return self


class Webhook(_Camel):
    """An HTTP hook called with Flagger's payload ({name, namespace, phase, checksum, metadata})."""

    name: Annotated[str, Field(min_length=1)]
    type: HookType
    url: Annotated[str, Field(pattern=r"^https?://")]
    timeout: str = "10s"
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        try:
            url = urllib.parse.urlsplit(value)
            url.port  # noqa: B018  # raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"webhook url {value!r} is not a URL: {exc}") from None
        if not url.hostname:
            raise ValueError(f"webhook url {value!r} has no host")
        return value


class StableComparison(_Camel):
    """Compare the canary with the stable predictor over the same window."""

    max_success_rate_drop: Annotated[float, Field(ge=0, le=100)] = 1.0
    max_p99_ratio: Annotated[float, Field(gt=0)] = 1.5


Weight = Annotated[int, Field(ge=1, le=100)]


class AnalysisSpec(_Camel):
    """How a canary is analysed, stepped up and promoted or rolled back."""

    steps: list[Weight] = Field(default_factory=list, description="Canary weights in order, e.g. [10, 25, 50].")
    step_weight: Weight | None = None
    max_weight: Weight | None = None
    interval: str = "1m"
    window: str | None = None
    threshold: Annotated[int, Field(ge=1)] = 5
    min_success_rate: Annotated[float, Field(ge=0, le=100)] = 99.0
    max_p99_ms: Annotated[float, Field(gt=0)] = 500.0
    min_requests: Annotated[int, Field(ge=1)] = 20
    compare_stable: StableComparison | None = None
    metrics: list[MetricCheck] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)
    manual_gates: list[Weight] = Field(default_factory=list)
    progress_deadline: str = "10m"
    canary_selector: str | None = None
    stable_selector: str | None = None

    @field_validator("interval", "progress_deadline")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("window")
    @classmethod
    def _check_window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _check_steps(self) -> AnalysisSpec:
        if self.steps and (self.step_weight is not None or self.max_weight is not None):
            raise ValueError("give steps or stepWeight/maxWeight, not both")
        if self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps {self.steps} must rise strictly")
        if (self.step_weight is None) != (self.max_weight is None):
            raise ValueError("stepWeight and maxWeight go together")
        if self.step_weight is not None and self.max_weight is not None and self.step_weight > self.max_weight:
            raise ValueError(f"stepWeight {self.step_weight} is above maxWeight {self.max_weight}")
        unknown_gates = sorted(set(self.manual_gates) - set(self.weights()))
        if unknown_gates:
            raise ValueError(f"manual gates {unknown_gates} are not among the steps {self.weights()}")
        names = [check.name for check in self.metrics]
        if len(names) != len(set(names)):
            raise ValueError(f"metric check names must be unique, got {names}")
        queries.check_templates([self.canary_selector, self.stable_selector], [c.query for c in self.metrics])
        return self

    def weights(self) -> list[int]:
        """The canary weights, in order; promotion follows a passed analysis at the last one."""
        if self.steps:
            return list(self.steps)
        if self.step_weight is not None and self.max_weight is not None:
            count = self.max_weight // self.step_weight
            weights = [self.step_weight * i for i in range(1, count + 1)]
            return weights if weights[-1] == self.max_weight else [*weights, self.max_weight]
        return [10, 25, 50]

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window) if self.window else self.interval_seconds

    @property
    def progress_deadline_seconds(self) -> float:
        return parse_duration(self.progress_deadline)

    def hooks(self, hook_type: HookType) -> list[Webhook]:
        return [hook for hook in self.webhooks if hook.type == hook_type]


class CanaryAnalysisSpec(AnalysisSpec):
    """``spec`` of a CanaryAnalysis object: the InferenceService it watches, and the analysis."""

    inference_service: Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=63)]
    prometheus_url: Annotated[str | None, Field(pattern=r"^https?://")] = None
