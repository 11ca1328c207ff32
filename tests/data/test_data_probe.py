"""The pure arithmetic of vitzoo.data.probe: timing from timestamps and the truncation rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitzoo.data.probe import Declared, Timing, _parse_duration_tag, timing_from_starts, truncation_cause


def test_constant_rate_keeps_the_nominal_rate_exactly():
    rate = 30000 / 1001
    starts = np.arange(10) / rate + 1e-7  # float noise in the timestamps
    timing = timing_from_starts(10, starts, 1 / rate, rate)
    assert timing.fps == rate and timing.duration == 10 / rate


def test_variable_rate_uses_the_timestamps():
    starts = np.array([0.0, 0.04, 0.08, 1.0, 2.0])
    timing = timing_from_starts(5, starts[::-1].copy(), 0.5, 25.0)  # any order
    assert timing.duration == pytest.approx(2.5) and timing.fps == pytest.approx(2.0)
    assert timing.end == pytest.approx(2.5)
    unstored = timing_from_starts(5, starts, None, 25.0)  # last frame lasts the mean interval
    assert unstored.duration == pytest.approx(2.0 + 2.0 / 4)


@pytest.mark.parametrize("starts", [None, np.array([0.0, np.nan, 0.08]), np.zeros(3)])
def test_without_usable_timestamps_the_nominal_rate_is_used(starts):
    timing = timing_from_starts(3, starts, None, 25.0)
    assert (timing.fps, timing.duration) == (25.0, 3 / 25)


def test_nothing_known():
    timing = timing_from_starts(3, None, None, 0.0)
    assert timing.fps == 0.0 and math.isnan(timing.duration) and timing.end is None


def test_truncation_by_frame_count():
    timing = Timing(num_frames=43, fps=25.0, duration=1.72, end=1.72)
    assert "declares 48 frames but only 43" in truncation_cause(timing, Declared(frames=48))
    assert truncation_cause(timing, Declared(frames=43)) is None
    assert truncation_cause(timing, Declared(frames=40)) is None  # more than declared is not truncation


def test_truncation_by_duration_allows_two_frame_periods():
    declared = Declared(duration=1.0)
    at = lambda end: truncation_cause(Timing(num_frames=25, fps=25.0, duration=end, end=end), declared)
    assert at(1.0) is None and at(0.92) is None  # two frame periods short: tolerated
    assert "declares 1.000 s of video but its 25 frames end at 0.900 s" in at(0.90)
    assert truncation_cause(Timing(25, 0.0, math.nan), declared) is None  # no rate: not checkable
    assert truncation_cause(Timing(25, 25.0, 0.5, end=0.5), Declared()) is None  # nothing declared


@pytest.mark.parametrize(
    ("tag", "seconds"),
    [("00:00:03.020000000", 3.02), ("01:02:03.5", 3723.5), ("00:00:00", 0.0), ("garbage", None), (None, None)],
)
def test_duration_tag(tag, seconds):
    assert _parse_duration_tag(tag) == seconds
