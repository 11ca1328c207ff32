"""Image folders (``root/<class>/<image>``) that follow the recipe's ``data.on_error``, as the video datasets do.

``torchvision.datasets.ImageFolder`` raises whatever PIL raises for an unreadable image (a traceback, whatever
the recipe says). :class:`ImageFolderDataset` turns that into :class:`ImageDecodeError` (a
:class:`~vitzoo.data.errors.VideoDecodeError`, so front ends treat it as they treat an undecodable video: one
line) under ``on_error="raise"``, and under ``"skip"`` logs a warning and substitutes the next image (index + 1,
+ 2, ..., deterministic), giving up after ``max_retries`` consecutive failures.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torchvision.datasets import ImageFolder

from vitzoo.data.errors import DataConfigError, VideoDecodeError

log = logging.getLogger(__name__)


class ImageDecodeError(VideoDecodeError):
    """An image file that cannot be opened or decoded (the message names the file and the cause)."""

    def __init__(self, path: str | Path, cause: str | None = None) -> None:
        super().__init__(path, cause)
        if cause is not None:
            self.args = (f"cannot decode image {str(self.path)!r}: {cause}",)


class ImageFolderDataset(ImageFolder):
    """``ImageFolder`` with ``on_error`` (``"raise"`` or ``"skip"``; see the module docstring)."""

    def __init__(self, root: str | Path, *, transform: Any = None, on_error: str = "raise", max_retries: int = 10):
        if on_error not in ("raise", "skip"):
            raise DataConfigError(f"on_error={on_error!r}; use 'raise' or 'skip'")
        super().__init__(str(root), transform=transform)
        self.on_error = on_error
        self.max_retries = max_retries
        self.num_failures = 0  # in this process (DataLoader workers count their own)

    def __getitem__(self, index: int):
        for attempt in range(self.max_retries + 1):
            source = (index + attempt) % len(self)
            try:
                return super().__getitem__(source)
            except (OSError, ValueError, SyntaxError) as exc:  # PIL: UnidentifiedImageError (OSError), truncation
                error = ImageDecodeError(self.samples[source][0], f"{type(exc).__name__}: {exc}")
                if self.on_error == "raise":
                    raise error from exc
                self.num_failures += 1
                log.warning("skipping sample %d: %s; substituting sample %d", source, error, (source + 1) % len(self))
        raise ImageDecodeError(
            self.samples[index][0], f"on_error='skip': {self.max_retries + 1} consecutive images failed to decode"
        )
