"""What ``vitzoo predict`` says about one input: top-k labels, per-window top-k, and the merged timeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Label:
    """One of the top-k classes: its name (the index as text when the model has no names), index, probability."""

    label: str
    index: int
    prob: float


@dataclass
class Window:
    """One clip window of a video: ``start`` = time (s) of the first frame it uses, ``end`` = of its last frame
    plus one frame duration; its top-k classes."""

    start: float
    end: float
    topk: list[Label]


@dataclass
class Segment:
    """A run of consecutive windows with the same top-1 class, from ``start`` to ``end`` seconds."""

    start: float
    end: float
    label: str


@dataclass
class Prediction:
    """The record of one input. ``topk``: the whole input (a video: the mean of its windows' probabilities);
    ``windows`` / ``segments``: the timeline of a video (one window for a clip predicted with the evaluation
    views); ``error``: one line when the input could not be read (then everything else is empty)."""

    path: str
    topk: list[Label] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (``error`` only when set)."""
        record = asdict(self)
        if self.error is None:
            del record["error"]
        return record

    def line(self) -> str:
        """One printable line: the path and its top-k with probabilities, or its error."""
        if self.error is not None:
            return f"{self.path}: error: {self.error}"
        labels = ", ".join(f"{item.label} {item.prob:.3f}" for item in self.topk)
        if len(self.windows) > 1:
            labels += f"  [{len(self.segments)} segments over {len(self.windows)} windows]"
        return f"{self.path}: {labels}"


@dataclass
class PredictStats:
    """Counters a caller may pass to :func:`vitzoo.predict` to measure it (``benchmarks/bench_predict.py``)."""

    inputs: int = 0
    windows: int = 0
    decode_s: float = 0.0  # decoding frames (the video reader), seconds
    total_s: float = 0.0  # everything, seconds


__all__ = ["Label", "PredictStats", "Prediction", "Segment", "Window"]
