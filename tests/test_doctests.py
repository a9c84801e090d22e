"""The ``>>>`` examples of the package's docstrings run, on a tiny model and index.

Every example runs in one working folder laid out as the docstrings expect: ``runs/demo`` (a
tiny random model, the tiny towers), its index ``runs/demo/index`` and its evaluation
``runs/demo/eval/val.json`` (as ``artsim evaluate`` leaves it), ``data/demo/manifest.csv`` (the
synthetic data set), ``runs/vf0.4`` and ``runs/vf0.2`` (two runs without a model that differ in
their validation fraction, for comparisons) and ``generated.png`` / ``original.png`` (a
generated work of its and the original it comes from). Besides each module's own names an
example may use ``tmp_path`` (an empty folder of its own) and, in :mod:`artsim.api`,
``artsim``, ``model`` and ``index`` (the package, the demo run and its index, opened). What an
example prints comes from that model: a shape is written ``(1, model.dim)`` and compared, never
a number copied from one run.

An example that needs real weights, a server or several processes is prose (a ``::`` block),
not a skipped ``>>>``: nothing here is skipped.
"""

from __future__ import annotations

import doctest
import importlib
import os
import re
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

MODULES = [
    "artsim.api",
    "artsim.cli.sweep",
    "artsim.data.corpora.demo",
    "artsim.data.corpora.synthetic",
    "artsim.data.families.heldout.derive",
    "artsim.data.families.heldout.prompts",
    "artsim.data.families.heldout.transforms",
    "artsim.data.families.training.derive",
    "artsim.data.manifest.items",
    "artsim.data.manifest.manifest",
    "artsim.data.manifest.split",
    "artsim.data.pictures.crops",
    "artsim.data.pictures.images",
    "artsim.eval.evaluate",
    "artsim.eval.generalisation",
    "artsim.eval.metrics",
    "artsim.eval.pointing",
    "artsim.eval.result",
    "artsim.eval.tasks",
    "artsim.index.build",
    "artsim.index.calibrate",
    "artsim.index.crops",
    "artsim.index.faiss_store",
    "artsim.index.faults",
    "artsim.index.locking",
    "artsim.index.query",
    "artsim.index.vector_index",
    "artsim.model.embedder",
    "artsim.model.explain",
    "artsim.model.features",
    "artsim.model.towers.registry",
    "artsim.progress",
    "artsim.report.compare",
    "artsim.report.report",
    "artsim.report.text",
    "artsim.runfolder",
    "artsim.serve.app",
    "artsim.stats",
    "artsim.verdicts.openset",
]


@pytest.fixture(scope="module")
def example_folder(
    tmp_path_factory, synthetic_manifest, write_run, make_rows, isolated_feature_cache
):
    """The working folder the examples run in (see the module docstring); the current folder
    while the module's tests run."""
    from artsim.data.manifest.manifest import load_manifest
    from artsim.eval.evaluate import evaluate_run
    from artsim.index.build import build_index

    folder = tmp_path_factory.mktemp("examples")
    shutil.copytree(synthetic_manifest.parent, folder / "data" / "demo")
    manifest = folder / "data" / "demo" / "manifest.csv"
    run = write_run(folder / "runs" / "demo", manifest, val_fraction=0.5)
    build_index(run, manifest, run / "index").close()
    evaluate_run(run, manifest, split="val")
    for fraction, val_loss in ((0.4, 0.12), (0.2, 0.08)):
        rows = make_rows(val_final=val_loss)
        write_run(folder / "runs" / f"vf{fraction}", manifest, val_fraction=fraction, rows=rows,
                  with_model=False)  # fmt: skip
    loaded = load_manifest(manifest)
    original = loaded.originals()[0]
    generated = next(item for item in loaded.generated() if item.group == original.group)
    shutil.copyfile(generated.image, folder / "generated.png")
    shutil.copyfile(original.image, folder / "original.png")
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(before)


def _names_for(module: str, tmp_path: Path) -> dict:
    names: dict = {"tmp_path": tmp_path}
    if module == "artsim.api":
        import artsim

        names["artsim"] = artsim
        names["model"] = artsim.load_model("runs/demo")
        names["index"] = artsim.open_index("runs/demo/index", read_only=True)
    return names


@pytest.mark.parametrize("module", MODULES)
def test_the_examples_of_a_module_run(module, example_folder, tmp_path):
    imported = importlib.import_module(module)
    names = _names_for(module, tmp_path)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report: list[str] = []
    try:
        tests = finder.find(imported, module, globs={**vars(imported), **names})
        for test in tests:
            runner.run(test, out=report.append)
    finally:
        if "index" in names:
            names["index"].close()
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, f"{module}: no example found"
    assert result.failed == 0, "".join(report)


def _modules_with_examples() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        if re.search(r"^\s*>>> ", path.read_text(encoding="utf-8"), flags=re.M):
            parts = path.relative_to(SRC).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_with_examples_has_them_run():
    assert _modules_with_examples() == set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_no_example_is_skipped(module):
    skipped = [
        f"{test.name} line {test.lineno + example.lineno + 1}"
        for test in doctest.DocTestFinder().find(importlib.import_module(module))
        for example in test.examples
        if example.options.get(doctest.SKIP)
    ]
    assert skipped == []
