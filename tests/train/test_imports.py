"""The training package's place in the layers: no import cycle through it (imports inside functions and under
``TYPE_CHECKING`` included), nothing above it imported (``vitzoo.ssl``, the front ends, the package root), and its
recipe's data builders in ``vitzoo.data``, which imports nothing of it."""

from __future__ import annotations

import grimp
import pytest

ABOVE_TRAIN = ("vitzoo.ssl", "vitzoo.cli", "vitzoo.demo", "vitzoo.bench")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("vitzoo", cache_dir=None)


def _imports(graph, package: str) -> list[tuple[str, str]]:
    return [
        (module, imported)
        for module in sorted(graph.find_descendants(package) | {package})
        for imported in sorted(graph.find_modules_directly_imported_by(module))
    ]


def test_no_cycle_passes_through_train(graph):
    cycles = [(m, i) for m, i in _imports(graph, "vitzoo.train") if graph.chain_exists(importer=i, imported=m)]
    assert not cycles, f"import cycles through vitzoo.train: {cycles}"


def test_train_imports_nothing_above_it(graph):
    upward = [(m, i) for m, i in _imports(graph, "vitzoo.train") if i == "vitzoo" or i.startswith(ABOVE_TRAIN)]
    assert not upward, f"vitzoo.train imports layers above it: {upward}"


def test_data_builders_live_in_data_which_imports_no_train(graph):
    from vitzoo.data import DataSpec, build_datasets
    from vitzoo.train import recipe
    from vitzoo.train.config import DataSpec as RecipeDataSpec

    assert RecipeDataSpec is DataSpec and recipe.build_datasets is build_datasets
    upward = [(m, i) for m, i in _imports(graph, "vitzoo.data") if not i.startswith(("vitzoo.data", "vitzoo.schema"))]
    below = ("config", "registry", "progress", "durable", "flops", "_version", "errors")
    assert all(i.split(".")[1] in below for _, i in upward), upward
