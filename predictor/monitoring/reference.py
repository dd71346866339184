"""Reference distributions and the population stability index (pure numpy, no I/O).

A feature's reference is a set of bin edges cut at the training data's quantiles (deciles by
default) and the share of training rows in each bin. Quantile bins give every bin about the same
reference share, so no bin is too thin to compare; a feature with few distinct values (ties)
simply gets fewer bins. The outermost bins are open, so live values outside the training range
land in them.

PSI = sum over bins of (live - reference) * ln(live / reference), with each share floored at
``FLOOR`` so that an empty bin adds a large but finite amount. Usual reading: below 0.1 no shift,
0.1 to 0.25 a moderate one, above 0.25 a major one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FORMAT = "servekit-profile/1"
DEFAULT_BINS = 10
# Share given to an empty bin: small enough that an emptied bin counts heavily, finite so a PSI
# is always a number.
FLOOR = 1e-4


class ProfileError(ValueError):
    """A profile that cannot be built or read; the message names the value and what was expected."""


@dataclass(frozen=True)
class FeatureReference:
    """One feature's bins: ``edges`` (ascending, len k-1) cut the line into k bins of ``shares``."""

    edges: np.ndarray
    shares: np.ndarray
    mean: float
    std: float

    def to_json(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "shares": self.shares.tolist(),
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> FeatureReference:
        try:
            edges = np.asarray(data["edges"], dtype=np.float64)
            shares = np.asarray(data["shares"], dtype=np.float64)
            mean, std = float(data["mean"]), float(data["std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{where}: expected edges, shares, mean and std, got {exc!r}") from None
        if shares.shape != (edges.size + 1,):
            raise ProfileError(f"{where}: {edges.size} edges need {edges.size + 1} shares, got {shares.size}")
        if edges.size and np.any(np.diff(edges) <= 0):
            raise ProfileError(f"{where}: edges must increase, got {edges.tolist()}")
        return cls(edges, shares, mean, std)


def bin_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each bin that ``edges`` cut (bin i holds edges[i-1] <= v < edges[i])."""
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)


def feature_reference(values: np.ndarray, bins: int = DEFAULT_BINS) -> FeatureReference:
    """The reference of one feature from its training values (NaN ignored)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ProfileError("a feature has no finite value in the data")
    # Cut at values the data has (not between them): a feature of few distinct values then gets
    # one bin per value instead of empty bins between them; ties merge bins.
    cuts = np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    edges = np.unique(cuts)
    shares = bin_counts(edges, finite) / finite.size
    return FeatureReference(edges, shares, float(finite.mean()), float(finite.std()))


def profile_features(rows: np.ndarray, bins: int = DEFAULT_BINS) -> list[FeatureReference]:
    """One reference per column of a (rows, features) array."""
    if rows.ndim != 2 or rows.shape[0] < 2:
        raise ProfileError(f"need a (rows, features) array with at least 2 rows, got shape {list(rows.shape)}")
    if bins < 2:
        raise ProfileError(f"bins must be at least 2, got {bins}")
    return [feature_reference(rows[:, f].astype(np.float64), bins) for f in range(rows.shape[1])]


def psi(reference: np.ndarray, live_counts: np.ndarray) -> float:
    """Population stability index of live bin counts against reference shares."""
    total = live_counts.sum()
    if total == 0:
        raise ValueError("no live values to compare")
    live = np.maximum(live_counts / total, FLOOR)
    ref = np.maximum(reference, FLOOR)
    return float(np.sum((live - ref) * np.log(live / ref)))


def feature_psi(reference: FeatureReference, values: np.ndarray) -> float:
    """PSI of one feature's live values (NaN left out) against its reference."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan")
    return psi(reference.shares, bin_counts(reference.edges, finite))


@dataclass(frozen=True)
class InputReference:
    """The references of one input tensor's features: column f of its rows flattened past the batch axis."""

    features: list[FeatureReference]

    @property
    def width(self) -> int:
        return len(self.features)


@dataclass(frozen=True)
class Profile:
    """A model directory's reference profile: per input, per feature."""

    inputs: dict[str, InputReference]
    rows: int
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "source": self.source,
            "inputs": {
                name: {"features": [f.to_json() for f in ref.features]} for name, ref in sorted(self.inputs.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Profile:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ProfileError(f"{where}: not a profile (format {got!r}, expected {FORMAT!r})")
        inputs = data.get("inputs")
        if not isinstance(inputs, dict) or not inputs:
            raise ProfileError(f"{where}: 'inputs' must map input names to their features")
        parsed = {}
        for name, item in inputs.items():
            features = item.get("features") if isinstance(item, dict) else None
            if not isinstance(features, list) or not features:
                raise ProfileError(f"{where}: input {name!r} has no features")
            parsed[name] = InputReference(
                [FeatureReference.from_json(f, f"{where}: input {name!r} feature {i}") for i, f in enumerate(features)]
            )
        return cls(parsed, int(data.get("rows", 0)), str(data.get("source", "")))
