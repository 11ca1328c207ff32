"""Files that are either complete or absent: verified atomic writes, and checks that tell a damaged file apart.

:func:`write_atomic` writes to a hidden temporary file in the same folder (``.<name>.tmp``), flushes and fsyncs
it, **reads it back** with a check of its format, and only then renames it onto the destination (``os.replace``,
atomic on POSIX) and fsyncs the folder. A crash, a kill, a full disk or a file that does not read back leaves the
destination as it was (the old file, or none) and, except after a kill, no temporary file either. A full disk is
reported as the ``OSError`` it is (``[Errno 28] No space left on device``), whatever the writer made of it.

The checks read only what is needed to prove a file complete, not the tensors:

* :func:`check_safetensors` parses the header and compares the file size with the end of the last tensor it
  describes (a cut copy or a write stopped by a full disk is shorter; a file of zeros has no header), and,
  when given the tensors that were written, their names, shapes and byte count;
* :func:`check_torch_zip` opens the zip archive ``torch.save`` writes: a truncated archive has lost its central
  directory (at the end of the file) and cannot be opened.

Both raise :class:`DamagedFileError` with a one-line reason.

Every file vitzoo writes goes through this module: :func:`write_atomic` for writers that take a file object
(``torch.save``, serialised bytes, text via :func:`write_text_atomic`), :func:`save_atomic` for libraries that write
only to a path name (the ONNX exporters). Both end with the same steps; without a ``check`` of the format,
:func:`write_atomic` checks that the file on disk holds every byte the writer wrote.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

import torch

from vitzoo.errors import OutputPathError, VitzooError


class DamagedFileError(VitzooError, ValueError):
    """A file that is not a complete file of its format (the message says what is wrong)."""


def make_directory(path: str | os.PathLike, *, what: str = "output folder") -> Path:
    """``mkdir -p path``; a folder that cannot be created (a file in the way, no permission, a read-only file
    system) raises :class:`~vitzoo.errors.OutputPathError` in one line naming it and the fix."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            exc.errno, f"cannot create the {what} {path}: {exc.strerror or exc}; choose another path"
        ) from None
    return path


def temporary_path(path: Path) -> Path:
    """The hidden temporary file :func:`write_atomic` writes ``path`` through."""
    return path.with_name(f".{path.name}.tmp")


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not sync directories; the rename itself is still atomic
    finally:
        os.close(fd)


def write_chunk(f: BinaryIO, data: bytes) -> int:
    """Write ``data`` to the open file ``f``: the one place where :func:`write_atomic`'s bytes reach the disk (the
    fault-injection tests make it fail as a full disk does)."""
    return f.write(data)


class _File:
    """The file object a writer gets from :func:`write_atomic`: writes go through :func:`write_chunk`, and the
    first ``OSError`` is kept, because ``torch.save`` turns it into an obscure ``RuntimeError`` ("unexpected
    pos ...") that no longer says "No space left on device"."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.error: OSError | None = None
        self.nbytes = 0  # bytes the writer handed over, for the default check

    def write(self, data) -> int:
        try:
            n = write_chunk(self._f, data)
        except OSError as exc:
            self.error = self.error or exc
            raise
        self.nbytes += n if isinstance(n, int) else 0
        return n

    def flush(self) -> None:
        self._f.flush()


def write_atomic(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None],
    check: Callable[[Path], None] | None = None,
    *,
    mode: int | None = None,
) -> Path:
    """``write(file)`` into a temporary file, fsync, ``check(tmp)``, then rename onto ``path`` (see the module
    docstring). Without ``check``, the file must hold as many bytes as the writer wrote (:func:`check_length`);
    ``mode`` sets the file's permissions before it takes ``path``'s place.

    Any exception (``OSError`` from a full disk, also when the writer reports it as something else;
    :class:`DamagedFileError` from ``check``) removes the temporary file and propagates; ``path`` is untouched.
    """
    path = Path(path)
    make_directory(path.parent)
    tmp = temporary_path(path)
    try:
        with open(tmp, "wb") as f:
            out = _File(f)
            try:
                write(out)
                f.flush()
                os.fsync(f.fileno())
            except Exception:
                if out.error is not None:
                    raise out.error from None
                raise
        _replace_checked(tmp, path, check or (lambda written: check_length(written, out.nbytes)), mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_atomic(
    path: str | os.PathLike, save: Callable[[Path], None], check: Callable[[Path], None], *, mode: int | None = None
) -> Path:
    """:func:`write_atomic` for a library that writes only to a path name (an ONNX exporter): ``save(tmp)`` into
    ``.<stem>.tmp<suffix>`` (the suffix kept: such writers choose the format by it), fsync, ``check(tmp)``, rename."""
    path = Path(path)
    make_directory(path.parent)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        save(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _replace_checked(tmp, path, check, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _replace_checked(tmp: Path, path: Path, check: Callable[[Path], None], mode: int | None) -> None:
    """The steps both writers end with: check the synced temporary file, rename it onto ``path``, sync the folder."""
    check(tmp)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    fsync_directory(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`write_atomic`, read back and compared before the rename."""
    data = text.encode("utf-8")

    def same_bytes(tmp: Path) -> None:
        if tmp.read_bytes() != data:
            raise DamagedFileError(f"{Path(path).name} does not read back as the {len(data)} bytes written")

    return write_atomic(path, lambda f: f.write(data), same_bytes, mode=mode)


def check_length(path: str | os.PathLike, nbytes: int) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` holds exactly ``nbytes`` bytes."""
    size = Path(path).stat().st_size
    if size != nbytes:
        raise DamagedFileError(f"{Path(path).name} has {size} bytes, {nbytes} were written")


def check_safetensors(path: str | os.PathLike, expected: Mapping[str, torch.Tensor] | None = None) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` is a complete safetensors file (holding ``expected``)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DamagedFileError(f"{path.name} is empty (0 bytes)")
    with open(path, "rb") as f:
        prefix = f.read(8)
        header_len = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 0 < header_len <= size - 8:
            raise DamagedFileError(f"{path.name} has no valid safetensors header ({size} bytes)")
        try:
            header = json.loads(f.read(header_len))
            entries = {k: v for k, v in header.items() if k != "__metadata__"}
            end = max((int(v["data_offsets"][1]) for v in entries.values()), default=0)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            raise DamagedFileError(f"{path.name} has no valid safetensors header ({size} bytes)") from None
    if size != 8 + header_len + end:
        what = "truncated" if size < 8 + header_len + end else "longer than its header says"
        raise DamagedFileError(f"{path.name} is {what}: {size} bytes, its header describes {8 + header_len + end}")
    if expected is not None:
        shapes = {k: tuple(v["shape"]) for k, v in entries.items()}
        wanted = {k: tuple(v.shape) for k, v in expected.items()}
        nbytes = sum(v.numel() * v.element_size() for v in expected.values())
        if shapes != wanted or end != nbytes:
            raise DamagedFileError(f"{path.name} does not hold the tensors that were written to it")


def check_torch_zip(path: str | os.PathLike) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` is a complete ``torch.save`` zip archive."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DamagedFileError(f"{path.name} is empty (0 bytes)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DamagedFileError(f"{path.name} is truncated or not a torch.save archive ({size} bytes: {exc})") from None
    if not any(name.endswith("/data.pkl") for name in names):
        raise DamagedFileError(f"{path.name} is a zip archive but not a torch.save file")


def check_zip(path: str | os.PathLike) -> None:
    """Raise :class:`DamagedFileError` unless ``path`` is a complete zip archive (a ``torch.export`` ``.pt2``)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DamagedFileError(f"{path.name} is truncated or not a zip archive ({exc})") from None
    if bad is not None:
        raise DamagedFileError(f"{path.name}: member {bad} does not match its checksum")
