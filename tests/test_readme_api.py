"""The README's Python API examples run as written, and ``import artsim`` stays light."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    """The ```python blocks of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def readme_folder(tmp_path, monkeypatch, synthetic_manifest, write_run, isolated_feature_cache):
    """A working folder laid out as the examples expect, with a tiny synthetic run and index."""
    from artsim.data.manifest.manifest import load_manifest
    from artsim.eval.evaluate import evaluate_run
    from artsim.index.build import build_index

    shutil.copytree(synthetic_manifest.parent, tmp_path / "data" / "demo")
    shutil.copytree(synthetic_manifest.parent, tmp_path / "more")
    manifest = tmp_path / "data" / "demo" / "manifest.csv"
    run = write_run(tmp_path / "runs" / "demo", manifest, val_fraction=0.5)
    evaluate_run(run, split="val")  # writes calibration.json
    build_index(run, manifest, run / "index").close()
    loaded = load_manifest(manifest)
    original = loaded.originals()[0]
    generated = next(item for item in loaded.generated() if item.group == original.group)
    shutil.copyfile(generated.image, tmp_path / "generated.png")
    shutil.copyfile(original.image, tmp_path / "original.png")
    options = {"image_tower": "tiny", "text_tower": "tiny", "accelerator": "cpu"}
    options |= {"progress": False, "val_fraction": 0.5}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(options), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_examples_run(readme_folder, capsys):
    import artsim.training.run  # noqa: F401 - importing the training package leaves artsim.train() alone

    blocks = python_blocks()
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    vectors, texts = namespace["vectors"], namespace["texts"]
    assert vectors.dtype == np.float32 and vectors.shape == (2, namespace["model"].dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, rtol=1e-5)
    pair = namespace["pair"]
    # A has an image and a prompt, B an image only: the calibrated task is image against image
    assert pair.task == "image" and set(pair.scores) == {"image", "t2i", "fused"}
    assert pair.verdict in ("derived", "not_derived")
    assert namespace["model"].calibration.status == "calibrated"
    assert namespace["added"] == 6 and namespace["removed"] == []
    summary, result = namespace["summary"], namespace["result"]
    assert (readme_folder / "runs" / "mine" / "summary.json").is_file()
    assert summary["epochs_completed"] <= 3
    # the README's evaluate measures without writing (write=False is the default)
    assert result.name == "val" and not (readme_folder / "runs/mine/eval/val.json").exists()
    printed = capsys.readouterr().out
    assert "calibrated" in printed


def test_search_results_are_typed_and_the_original_is_found(readme_folder):
    import artsim

    with artsim.open_index("runs/demo/index") as index:
        hits = index.search(image="original.png", k=3)
        assert len(index) == 6
    first = hits[0]
    assert first.rank == 1 and first.task == "image" and first.scores["image"] == first.score
    assert first.id.endswith("orig") and first.verdict in ("derived", "not_derived")


def test_import_artsim_loads_no_terminal_or_web_toolkit():
    code = (
        "import sys, artsim\n"
        "heavy = ('typer', 'rich', 'click', 'fastapi', 'uvicorn', 'torch')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
        "artsim.load_model\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy[:5])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"  # not even torch before the API is used
    assert out[1] == "[]"  # the API itself needs none of the toolkits
