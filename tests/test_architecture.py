"""The layer order of docs/architecture.md holds: no import cycle at any level, no module imports the package root,
and import-linter's ``layers`` contract in pyproject.toml is kept. Imports inside functions count (grimp, the graph
import-linter uses, reads every import statement). Each check is first shown to fail on a tiny package written to
``tmp_path`` (the negative controls)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)
    return found


def import_cycles(package: str) -> list[tuple[str, list[str]]]:
    """Every import cycle in ``package``, at every level: for each (sub)package, the cycles among its direct children,
    a child standing for itself and everything below it. A cycle of modules shows up at the level of the deepest
    package that holds all of them; two packages that import each other, through any modules, at their parent's."""
    graph = grimp.build_graph(package, cache_dir=None)
    cycles = []
    for parent in sorted(m for m in graph.modules if graph.find_children(m)):
        children = set(graph.find_children(parent))
        edges: dict[str, set[str]] = {}
        for module in graph.modules:
            if not module.startswith(parent + "."):
                continue
            source = parent + "." + module[len(parent) + 1 :].split(".")[0]
            for imported in graph.find_modules_directly_imported_by(module):
                if imported.startswith(parent + "."):
                    target = parent + "." + imported[len(parent) + 1 :].split(".")[0]
                    if target != source:
                        edges.setdefault(source, set()).add(target)
        cycles += [(parent, sorted(c)) for c in _strongly_connected(children, edges)]
    return cycles


def root_importers(package: str) -> list[str]:
    """The modules inside ``package`` that import the package root itself (``import vitzoo``, ``from vitzoo import
    create``): the root imports everything, so each of them closes a cycle through it."""
    graph = grimp.build_graph(package, cache_dir=None)
    return sorted(m for m in graph.find_modules_that_directly_import(package) if m.startswith(package + "."))


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """import-linter on the pyproject.toml in ``cwd``, with ``cwd`` first on the path (a fresh interpreter)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def tangled(tmp_path, monkeypatch) -> str:
    """A throwaway package with a cycle through an import inside a function (``a`` <-> ``b``), a cycle between two
    subpackages that no two modules close on their own (``x`` <-> ``y``), and a module importing the root."""
    _write_package(
        tmp_path,
        {
            "tangled/__init__.py": "from tangled import a\n",
            "tangled/a.py": "def f():\n    from tangled.b import g\n    return g\n",
            "tangled/b.py": "import tangled.a\n\ndef g():\n    return 1\n",
            "tangled/x/__init__.py": "",
            "tangled/x/low.py": "from tangled.y.top import T\n",
            "tangled/x/high.py": "",
            "tangled/y/__init__.py": "",
            "tangled/y/top.py": "T = 1\n",
            "tangled/y/other.py": "import tangled.x.high\n",
            "tangled/c.py": "import tangled\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tangled"


def test_the_cycle_finder_finds_cycles_in_a_tangled_package(tangled):
    cycles = import_cycles(tangled)
    assert ("tangled", ["tangled.a", "tangled.b"]) in cycles  # the import inside f() counts
    assert ("tangled", ["tangled.x", "tangled.y"]) in cycles  # a package-level cycle, no module cycle
    assert root_importers(tangled) == ["tangled.c"]


def test_vitzoo_has_no_import_cycle_at_any_level():
    cycles = import_cycles("vitzoo")
    assert not cycles, "import cycles (level: members): " + "; ".join(f"{p}: {' <-> '.join(c)}" for p, c in cycles)


def test_no_vitzoo_module_imports_the_package_root():
    assert root_importers("vitzoo") == [], "import from the module that defines the name, not from vitzoo itself"


def test_lint_imports_fails_on_an_upward_import(tmp_path):
    """The negative control: the same runner reports a low layer importing a high one (inside a function)."""
    _write_package(
        tmp_path,
        {
            "pyproject.toml": """
                [tool.importlinter]
                root_package = "stacked"

                [[tool.importlinter.contracts]]
                name = "stacked layers"
                type = "layers"
                containers = ["stacked"]
                layers = ["high", "low"]
            """,
            "stacked/__init__.py": "",
            "stacked/high.py": "from stacked import low\n",
            "stacked/low.py": "def f():\n    from stacked import high\n    return high\n",
        },
    )
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stacked.low -> stacked.high" in result.stdout


def test_the_layers_contract_is_kept():
    """pyproject.toml's import-linter contract (the layer order of docs/architecture.md) holds for this checkout."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_family_adapters_are_registered_by_importing_vitzoo():
    """``load_pretrained`` finds the Video Swin's adapter through the checkpoints layer's table in a fresh
    interpreter, where nothing but ``import vitzoo`` has run (the models do not import their adapters)."""
    code = (
        "import vitzoo; from vitzoo.checkpoints.adapters import adapter_for; "
        "print(adapter_for(vitzoo.model_config('video_swin_tiny_4x2')).__name__, "
        "adapter_for(vitzoo.model_config('vivit_fact_enc_nano_8x2')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["adapt_swin_checkpoint", "None"]
