"""The one family of errors a user can cause: :class:`VitzooError` and its subclasses.

Every error vitzoo raises for a mistake in its input (a config value, a file, a checkpoint, a name, a data
folder, an output path) derives from :class:`VitzooError` and keeps the builtin base it had before the family
existed, so ``except ValueError`` / ``except FileNotFoundError`` in user code keeps working. The ``vitzoo``
command prints any :class:`VitzooError` as one line on stderr and exits with its :attr:`~VitzooError.exit_status`
(2: nothing was done); any other exception is a bug in vitzoo and keeps its traceback.

The family (other modules add their own subclasses, listed in ``docs/reliability.md``):

=====================================  =============================  ==================================================
class                                  builtin base                   raised for
=====================================  =============================  ==================================================
:class:`VitzooError`                   ``Exception``                  base of the family
:class:`InputNotFoundError`            ``FileNotFoundError``          a file, folder or name that does not exist
:class:`OutputExistsError`             ``FileExistsError``            an output path that exists and is not overwritten
:class:`OutputPathError`               ``OSError``                    an output folder that cannot be created
:class:`UnknownNameError`              ``KeyError``                   a registered name (model, config class) unknown
:class:`CheckpointFileError`           ``ValueError``                 a checkpoint that cannot be read or does not fit
:class:`UnsafeCheckpointError`         ``pickle.UnpicklingError``     a torch pickle that holds code (refused)
:class:`UnsupportedFeatureError`       ``NotImplementedError``        a checkpoint or option vitzoo does not implement
``schema.ConfigError``                 ``ValueError``, ``TypeError``  a config or option value
``data.errors.DataConfigError``        ``ValueError``                 a data option, annotation file or dataset folder
``data.errors.VideoDecodeError``       ``RuntimeError``               a video that cannot be decoded
``durable.DamagedFileError``           ``ValueError``                 a truncated or corrupt file
``export.ExportError``                 ``ValueError``                 an export that cannot be made as asked
``checkpoints.hub.HubFileMissing``     ``FileNotFoundError``          a Hub file neither cached nor reachable
``train.errors.RunLockedError``        ``RuntimeError``               a run directory in use by another process
``train.errors.CheckpointError`` ...   ``RuntimeError``               a training checkpoint not readable / writable
=====================================  =============================  ==================================================
"""

from __future__ import annotations

import pickle


class VitzooError(Exception):
    """An error the user can cause and fix; its message is one line naming the value or file and the fix.

    Attributes:
        exit_status: the ``vitzoo`` command's exit status for it (2: a mistake in the input, nothing was done).
    """

    exit_status: int = 2


class InputNotFoundError(VitzooError, FileNotFoundError):
    """A file, folder or name given as input does not exist (the message says where it was looked for)."""


class OutputExistsError(VitzooError, FileExistsError):
    """An output path exists already and would be overwritten (the message says what to do instead)."""


class OutputPathError(VitzooError, OSError):
    """An output folder that cannot be created (a file in the way, no permission, a read-only file system)."""


class UnknownNameError(VitzooError, KeyError):
    """A name that no registry holds (a model, a config class); the message lists the closest known names."""

    def __str__(self) -> str:  # KeyError would quote its message
        return str(self.args[0]) if self.args else ""


class CheckpointFileError(VitzooError, ValueError):
    """A checkpoint file or folder that cannot be read or does not fit the model (truncated, not a weight file,
    a ``config.json`` vitzoo cannot use, tensors of another model); the message names the file and the fix."""


class UnsafeCheckpointError(CheckpointFileError, pickle.UnpicklingError):
    """A torch pickle that holds code (objects other than tensors and plain data): refused, never executed."""


class UnsupportedFeatureError(VitzooError, NotImplementedError):
    """A checkpoint, converted model or option that uses something vitzoo does not implement (a converter names the
    argument or tensor); nothing was converted."""


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (its whitespace collapsed), or its type name when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__
