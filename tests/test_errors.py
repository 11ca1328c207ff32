"""The one error family: every exception class vitzoo defines is a VitzooError and keeps its builtin base; the CLI
prints the family as one line (status 2) and anything else as a bug with its traceback (status 1)."""

from __future__ import annotations

import ast
import importlib
import pickle

import pytest

from tests.helpers import REPO_ROOT
from vitzoo.errors import VitzooError


def _exception_classes() -> list[tuple[str, str]]:
    """``(module, class)`` of every class in vitzoo/ deriving from something named ``*Error`` / ``*Exception``."""
    found = []
    for path in sorted((REPO_ROOT / "vitzoo").rglob("*.py")):
        module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b).split(".")[-1] for b in node.bases]
                if any(b.endswith(("Error", "Exception", "Missing")) for b in bases):
                    found.append((module, node.name))
    return found


CLASSES = _exception_classes()


def test_the_scan_finds_the_known_classes():
    names = {name for _, name in CLASSES}
    assert {"ConfigError", "DataConfigError", "VideoDecodeError", "CheckpointWriteError", "HubFileMissing"} <= names


@pytest.mark.parametrize("module, name", CLASSES, ids=[n for _, n in CLASSES])
def test_every_error_class_joins_the_family(module, name):
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, VitzooError), f"{module}.{name}: derive it from vitzoo.errors.VitzooError too"


@pytest.mark.parametrize(
    "path, builtins",
    [
        ("vitzoo.schema.ConfigError", (ValueError, TypeError)),
        ("vitzoo.data.errors.DataConfigError", (ValueError,)),
        ("vitzoo.data.errors.VideoDecodeError", (RuntimeError,)),
        ("vitzoo.durable.DamagedFileError", (ValueError,)),
        ("vitzoo.export.ExportError", (ValueError,)),
        ("vitzoo.checkpoints.hub.HubFileMissing", (FileNotFoundError,)),
        ("vitzoo.train.errors.RunLockedError", (RuntimeError,)),
        ("vitzoo.train.errors.CheckpointReadError", (RuntimeError,)),
        ("vitzoo.errors.CheckpointFileError", (ValueError,)),
        ("vitzoo.errors.UnsafeCheckpointError", (ValueError, pickle.UnpicklingError)),
        ("vitzoo.errors.UnknownNameError", (KeyError,)),
        ("vitzoo.errors.OutputPathError", (OSError,)),
    ],
)
def test_builtin_bases_are_kept(path, builtins):
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert all(issubclass(cls, b) for b in builtins)


def test_unknown_names_are_one_line_key_errors():
    from vitzoo.registry import MODELS

    with pytest.raises(KeyError) as err:
        MODELS.resolve("vit_nano_patch8_3")
    assert str(err.value).startswith("unknown model 'vit_nano_patch8_3' (did you mean")


def test_the_cli_prints_the_family_as_one_line_and_a_bug_with_its_traceback(monkeypatch, capsys):
    from vitzoo.cli import main as cli
    from vitzoo.errors import InputNotFoundError

    monkeypatch.setattr(cli, "cmd_models", lambda args: (_ for _ in ()).throw(InputNotFoundError("no such\nthing")))
    assert cli.main(["models"]) == 2
    assert capsys.readouterr().err == "vitzoo models: error: no such thing\n"

    monkeypatch.setattr(cli, "cmd_models", lambda args: {}["missing key"])  # a bug: a bare KeyError
    assert cli.main(["models"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Traceback (most recent call last):" and "KeyError: 'missing key'" in err
    assert err[-1].startswith("vitzoo models: this is a bug in vitzoo") and "report it" in err[-1]
