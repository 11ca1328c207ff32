"""The exception types of the data pipeline.

* :class:`VideoDecodeError` (a ``RuntimeError``): one video file cannot be used (missing, not a video,
  truncated, corrupt). Datasets can skip such samples (``on_error="skip"``).
* :class:`DataConfigError` (a ``ValueError``): a bad option of a sampler, transform, dataset or loader,
  found when it is constructed. The message names the value and the fix, on one line.
* :class:`AnnotationError` (a :class:`DataConfigError`): a bad annotation or class-names file; the
  message names ``file:line`` where there is one.

Command-line front ends print a ``DataConfigError`` (hence also an ``AnnotationError``) as one line and
exit with status 2; both are ``ValueError`` so code that already catches ``ValueError`` keeps working.
"""

from __future__ import annotations

from pathlib import Path

from vitzoo.errors import VitzooError


class DataConfigError(VitzooError, ValueError):
    """A data option (sampler, transform, dataset, loader, reader) that cannot work; the message says why."""


class AnnotationError(DataConfigError):
    """An annotation list or class-names file that cannot be used (empty, malformed line, bad label)."""


class VideoDecodeError(VitzooError, RuntimeError):
    """A video file could not be opened or decoded.

    Raised for a missing path, an empty file, bytes that are not a video container, a container
    without a (decodable) video stream, a truncated file, or frames that fail to decode. The message
    names the file and the cause; both are also available as attributes.

    ``VideoDecodeError(path, cause)`` is the normal form. The one-argument form
    ``VideoDecodeError(message)`` exists so that PyTorch's DataLoader, which re-creates a worker's
    exception in the main process as ``type(exc)(formatted_traceback)``, keeps the type instead of
    degrading it to a plain ``RuntimeError``; ``path`` and ``cause`` are then ``None``.

    Attributes:
        path: the file that failed (``None`` in the one-argument form).
        cause: a short reason, the backend's own message where there is one (``None`` likewise).
    """

    def __init__(self, path: str | Path, cause: str | None = None) -> None:
        if cause is None:  # a ready-made message (see the class docstring)
            self.path, self.cause = None, None
            super().__init__(str(path))
            return
        self.path = Path(path)
        self.cause = cause
        super().__init__(f"cannot decode video {str(self.path)!r}: {cause}")

    def __reduce__(self):
        if self.cause is None:
            return (type(self), (self.args[0],))
        return (type(self), (self.path, self.cause))
