"""Window positions over a long video and the merging of windows into segments (pure functions)."""

from __future__ import annotations

import pytest

from vitzoo.inference.records import Label, Window
from vitzoo.inference.timeline import merge_segments, window_starts


def test_windows_every_stride_and_one_ending_at_the_last_frame():
    assert window_starts(100, 15, 8) == [0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 85]
    assert window_starts(39, 15, 8) == [0, 8, 16, 24]  # 24 + 15 = 39: the stride lands on the end


def test_a_clip_shorter_than_a_window_plus_a_stride_has_no_sliding_windows():
    assert window_starts(16, 15, 8) == []  # predicted with the evaluation views instead
    assert window_starts(23, 15, 8) == [0, 8]


@pytest.mark.parametrize(("span", "stride"), [(0, 1), (5, 0)])
def test_bad_window_sizes_are_refused(span, stride):
    with pytest.raises(ValueError, match="must be >= 1"):
        window_starts(100, span, stride)


def _window(start: float, label: str) -> Window:
    return Window(start=start, end=start + 2.0, topk=[Label(label=label, index=0, prob=1.0)])


def test_segments_merge_equal_neighbours_and_split_halfway_between_window_centres():
    windows = [_window(t, label) for t, label in ((0, "a"), (1, "a"), (2, "b"), (3, "b"), (4, "a"))]
    segments = merge_segments(windows)
    assert [(s.start, s.end, s.label) for s in segments] == [(0, 2.5, "a"), (2.5, 4.5, "b"), (4.5, 6.0, "a")]
    assert merge_segments([]) == []
