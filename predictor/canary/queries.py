"""PromQL templates of the analysis: read them, copy them, override them.

A template is PromQL with ``$name`` placeholders (``string.Template``; PromQL itself never uses
``$``). ``$selector`` is the label matchers of one variant; ``$window`` the range of each check.

The predictor's own series carry ``model``, ``protocol`` and ``code``; the variant comes from the
pod labels KServe puts on each variant's pods, which the chart's ServiceMonitor copies onto every
series (relabelings):

- Standard mode: ``app="isvc.<isvc>-<predictor name>-predictor"`` (``isvc.<isvc>-predictor`` for an
  unnamed predictor), with ``namespace``.
- Knative mode: ``serving_knative_dev_revision="<revision>"`` (the pod label
  ``serving.knative.dev/revision``), with ``namespace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from string import Template

REQUESTS = "sum(increase(servekit_requests_total{$selector}[$window]))"
ERRORS = 'sum(increase(servekit_requests_total{$selector,code=~"5.."}[$window]))'
P99_SECONDS = (
    "histogram_quantile(0.99, sum by (le) (rate(servekit_request_duration_seconds_bucket{$selector}[$window])))"
)

# Ready-made custom checks on what the predictor reports about its model (predictor/monitoring/),
# for an analysis's ``metrics``; docs/canary.md shows them in a CanaryAnalysis.
# The largest population stability index of any input feature of the canary against its profile.
INPUT_DRIFT = "max(servekit_input_drift{$selector})"
# Total variation distance between the canary's and the stable's shares of each predicted class in
# the window, per labelled output and summed over them: 0 when both predict classes in the same
# proportions, 1 when they share none. A class only one side predicted counts in full (the two
# "or" terms) instead of being dropped by the subtraction, which keeps only classes on both sides.
_CLASS_SHARES = (
    "(sum by (output, label) (increase(servekit_predictions_total{%s}[$window]))"
    " / ignoring (label) group_left sum by (output) (increase(servekit_predictions_total{%s}[$window])))"
)
_CANARY_SHARES = _CLASS_SHARES % ("$selector", "$selector")
_STABLE_SHARES = _CLASS_SHARES % ("$stable_selector", "$stable_selector")
_PREDICTED = "(sum(increase(servekit_predictions_total{%s}[$window])) > 0)"
# ... and no number at all ("no data", a failed check) unless both sides predicted some class.
PREDICTION_SHIFT = (
    f"(sum(abs(({_CANARY_SHARES} - {_STABLE_SHARES}) or {_CANARY_SHARES} or {_STABLE_SHARES})) / 2)"
    f" and on () {_PREDICTED % '$selector'} and on () {_PREDICTED % '$stable_selector'}"
)
# How far the canary's live accuracy (from ground truth sent to /feedback) is below the stable's.
ACCURACY_DROP = "avg(servekit_live_accuracy{$stable_selector}) - avg(servekit_live_accuracy{$selector})"

STANDARD_SELECTOR = 'namespace="$namespace",app="$app"'
KNATIVE_SELECTOR = 'namespace="$namespace",serving_knative_dev_revision="$revision"'


def standard_app_label(isvc: str, predictor: str | None) -> str:
    """The ``app`` label KServe gives the pods of one Standard-mode predictor."""
    return f"isvc.{isvc}-{predictor}-predictor" if predictor else f"isvc.{isvc}-predictor"


@dataclass(frozen=True)
class Variant:
    """One side of the comparison: the canary or the stable predictor."""

    namespace: str
    isvc: str
    predictor: str | None = None  # Standard mode
    revision: str | None = None  # Knative mode

    def values(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "isvc": self.isvc,
            "predictor": self.predictor or "",
            "app": standard_app_label(self.isvc, self.predictor),
            "revision": self.revision or "",
        }


class TemplateError(ValueError):
    """A template names a placeholder the analysis does not fill."""


def fill(template: str, values: dict[str, str]) -> str:
    try:
        return Template(template).substitute(values)
    except KeyError as exc:
        raise TemplateError(
            f"template {template!r} uses ${exc.args[0]}; known placeholders: {', '.join(sorted(values))}"
        ) from None
    except ValueError as exc:  # a "$" before something that is not a placeholder, e.g. a regex's "$"
        raise TemplateError(f"template {template!r}: {exc} (write $$ for a literal $)") from None


def check_templates(selectors: list[str | None], checks: list[str]) -> None:
    """Fill every template as an analysis would, in both modes: a bad one fails here, when the
    analysis is read, and not at the first analysis of a rollout already under way."""
    probes = ((Variant("ns", "isvc", predictor="p"), False), (Variant("ns", "isvc", revision="r"), True))
    for variant, knative in probes:
        matchers = [selector(variant, knative, override) for override in selectors]
        for query in checks:
            render(query, variant, matchers[0], "1m", matchers[-1])


def selector(variant: Variant, knative: bool, override: str | None = None) -> str:
    """Label matchers of one variant: the override (itself a template) or the mode's default."""
    template = override or (KNATIVE_SELECTOR if knative else STANDARD_SELECTOR)
    return fill(template, variant.values())


def render(template: str, variant: Variant, variant_selector: str, window: str, stable_selector: str = "") -> str:
    """One query of ``variant``; ``$stable_selector`` (custom checks) lets it compare with the stable."""
    values = {**variant.values(), "selector": variant_selector, "stable_selector": stable_selector, "window": window}
    return fill(template, values)
