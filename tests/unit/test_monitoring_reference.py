"""Reference bins and the population stability index: pure numpy, checked against hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from predictor.monitoring.reference import (
    FLOOR,
    FeatureReference,
    InputReference,
    Profile,
    ProfileError,
    bin_counts,
    feature_psi,
    feature_reference,
    profile_features,
    psi,
)


def test_bins_hold_the_values_from_their_lower_edge_up_to_the_next() -> None:
    edges = np.array([1.0, 2.0])
    assert bin_counts(edges, np.array([0.5, 1.0, 1.5, 2.0, 9.0])).tolist() == [1, 2, 2]


def test_deciles_give_ten_bins_of_a_tenth_each() -> None:
    reference = feature_reference(np.arange(1000, dtype=np.float64))
    assert reference.edges.size == 9
    assert reference.shares.tolist() == pytest.approx([0.1] * 10, abs=0.002)
    assert reference.mean == pytest.approx(499.5)


def test_ties_merge_bins_instead_of_making_empty_ones() -> None:
    reference = feature_reference(np.array([0.0] * 80 + [1.0] * 20))
    assert reference.edges.tolist() == [0.0, 1.0]
    assert reference.shares.tolist() == [0.0, 0.8, 0.2]  # below the smallest training value: none


def test_psi_by_hand() -> None:
    # (0.3 - 0.5) ln(0.3 / 0.5) + (0.7 - 0.5) ln(0.7 / 0.5)
    expected = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert psi(np.array([0.5, 0.5]), np.array([3, 7])) == pytest.approx(expected)
    assert psi(np.array([0.5, 0.5]), np.array([5, 5])) == 0.0


def test_an_empty_bin_counts_at_the_floor_not_at_infinity() -> None:
    value = psi(np.array([0.5, 0.5]), np.array([10, 0]))
    expected = (1 - 0.5) * math.log(1 / 0.5) + (FLOOR - 0.5) * math.log(FLOOR / 0.5)
    assert value == pytest.approx(expected)


def test_the_same_distribution_stays_below_0_1_and_a_3_std_shift_goes_above_0_25() -> None:
    rng = np.random.default_rng(7)
    reference = feature_reference(rng.normal(10, 2, 5000))
    same = [feature_psi(reference, rng.normal(10, 2, 1000)) for _ in range(20)]
    assert max(same) < 0.1, same
    assert feature_psi(reference, rng.normal(16, 2, 1000)) > 0.25


def test_nan_values_are_left_out() -> None:
    reference = feature_reference(np.array([1.0, 2.0, np.nan, 3.0, 4.0]), bins=2)
    assert reference.shares.sum() == pytest.approx(1.0)
    assert math.isnan(feature_psi(reference, np.array([np.nan, np.nan])))


def test_profiles_survive_json_and_refuse_what_is_not_one() -> None:
    rows = np.random.default_rng(1).normal(size=(200, 3))
    profile = Profile({"x": InputReference(profile_features(rows))}, rows=200, source="train.npy")
    again = Profile.from_json(profile.to_json(), "p.json")
    assert again.inputs["x"].width == 3
    np.testing.assert_array_equal(again.inputs["x"].features[1].edges, profile.inputs["x"].features[1].edges)
    with pytest.raises(ProfileError, match="not a profile"):
        Profile.from_json({"format": "other"}, "p.json")
    with pytest.raises(ProfileError, match="3 edges need 4 shares, got 2"):
        FeatureReference.from_json({"edges": [1, 2, 3], "shares": [0.5, 0.5], "mean": 0, "std": 1}, "f")
    with pytest.raises(ProfileError, match="edges must increase"):
        FeatureReference.from_json({"edges": [2, 1], "shares": [0.3, 0.3, 0.4], "mean": 0, "std": 1}, "f")


def test_a_profile_needs_rows_of_features() -> None:
    with pytest.raises(ProfileError, match=r"got shape \[5\]"):
        profile_features(np.zeros(5))
    with pytest.raises(ProfileError, match="bins must be at least 2, got 1"):
        profile_features(np.zeros((5, 2)), bins=1)
