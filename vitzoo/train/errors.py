"""The exceptions of a training run that front ends report as one line (``vitzoo train`` / ``eval``).

* :class:`RunLockedError`: another process holds the run directory (see :mod:`vitzoo.train.lock`).
* :class:`CheckpointReadError`: no usable checkpoint where one was asked for (all candidates damaged, or the one
  named is damaged); the message names every file tried and why it was refused.
* :class:`CheckpointWriteError`: a checkpoint could not be written (full disk, I/O error, a file that did not
  read back); the message names the file, the cause, and the previous checkpoint, which is left intact.

Configuration mistakes raise :class:`vitzoo.schema.ConfigError` as everywhere else.
"""

from __future__ import annotations

from vitzoo.errors import VitzooError


class RunLockedError(VitzooError, RuntimeError):
    """The run directory is locked by another live process (the message names its pid, host and start time)."""


class CheckpointError(VitzooError, RuntimeError):
    """Base class of the checkpoint errors below."""


class CheckpointReadError(CheckpointError):
    """No checkpoint could be read where one was needed; the message names the files and why each was refused."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint (or ``best.safetensors``) could not be written; earlier checkpoints are left as they were.

    Exit status 1, not 2: training ran (the input was fine) and the machine failed it (a full disk, an I/O error).
    """

    exit_status = 1
