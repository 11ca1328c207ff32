"""The one range check of vitzoo.schema: one line naming the field, the value and the allowed range."""

from __future__ import annotations

import math

import pytest

from vitzoo.schema import ConfigError, check_min_max, check_range


@pytest.mark.parametrize(
    ("value", "bounds", "message"),
    [
        (-1, dict(low=0, low_open=True), "lr must be > 0, got -1"),
        (0, dict(low=0, low_open=True), "lr must be > 0, got 0"),
        (math.nan, dict(low=0, low_open=True), "lr must be > 0, got nan"),
        (-0.5, dict(low=0), "lr must be >= 0, got -0.5"),
        (1.0, dict(low=0, high=1, high_open=True), "lr must be in [0, 1), got 1.0"),
        (0, dict(low=0, high=1, low_open=True, high_open=True), "lr must be in (0, 1), got 0"),
        (3, dict(high=2), "lr must be <= 2, got 3"),
    ],
)
def test_out_of_range_values_raise_one_line(value, bounds, message):
    with pytest.raises(ConfigError) as info:
        check_range("lr", value, **bounds)
    assert str(info.value) == message


def test_values_in_range_and_optional_none_pass():
    """Negative control: the boundaries of closed ranges are accepted; None only when optional."""
    assert check_range("p", 0.0, low=0, high=1) == 0.0 and check_range("p", 1, low=0, high=1) == 1
    assert check_range("gap", None, low=0, optional=True) is None
    with pytest.raises(ConfigError, match="^gap must be >= 0, got None$"):
        check_range("gap", None, low=0)
    with pytest.raises(ValueError, match="margin must be > 0") as info:
        check_range("margin", 0, low=0, low_open=True, error=ValueError)
    assert type(info.value) is ValueError


def test_min_max_pairs():
    assert check_min_max("scale", [0.5, 1]) == (0.5, 1.0) and check_min_max("ratio", (1, 1), upper=None) == (1.0, 1.0)
    for bad in ([0.9, 0.2], [0.0, 1.0], [0.5, 2.0], 0.5, ["a", 1]):
        with pytest.raises(ConfigError, match=r"^scale=.* must be \(min, max\) with 0 < min <= max <= 1 \(area\)$"):
            check_min_max("scale", bad, upper=1, meaning="area")
