"""Where the windows of a long video start, and how windows become a timeline of segments (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence

from vitzoo.inference.records import Segment, Window


def window_starts(num_frames: int, span: int, stride: int) -> list[int]:
    """First frames of the windows of ``span`` frames every ``stride`` frames over a video of ``num_frames``; a last
    window ends at the last frame when the stride does not land there. Empty when the video is shorter than a window
    plus one stride (such a clip is predicted with the evaluation views instead)."""
    if span < 1 or stride < 1:
        raise ValueError(f"span={span} and stride={stride} must be >= 1 frame")
    if num_frames < span + stride:
        return []
    starts = list(range(0, num_frames - span + 1, stride))
    if starts[-1] != num_frames - span:
        starts.append(num_frames - span)
    return starts


def merge_segments(windows: Sequence[Window]) -> list[Segment]:
    """Consecutive windows with the same top-1 label -> one segment. Windows overlap, so a boundary between two
    segments is put halfway between the centres of the last window of one and the first window of the next; the
    first segment starts with the first window and the last ends with the last window."""
    segments: list[Segment] = []
    centre = lambda w: (w.start + w.end) / 2
    for i, window in enumerate(windows):
        label = window.topk[0].label
        if segments and segments[-1].label == label:
            continue
        start = window.start if i == 0 else (centre(windows[i - 1]) + centre(window)) / 2
        if segments:
            segments[-1].end = start
        segments.append(Segment(start=start, end=windows[-1].end, label=label))
    return segments


__all__ = ["merge_segments", "window_starts"]
