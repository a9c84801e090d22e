"""A model with a fine-tuned image tower: only its trained head reads the fine-tuned features.

The whitened frozen part of the blend, the ConSE bridge and the frozen baseline of an evaluation
must stay the packaged tower's (the "never below frozen" guarantee rests on them), and the two
towers' features are cached apart.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from artsim.data.pictures.images import load_rgb
from artsim.eval.evaluate import evaluate_run
from artsim.model.blend import fit_whitening
from artsim.model.embedder import Embedder
from artsim.model.heads import ArtSimModel, ModelConfig, save_model
from artsim.model.towers import TinyImageTower, TinyTextTower

EMBED, WHITEN, CLASSES = 8, 6, 5


def _blended_bridged_model() -> ArtSimModel:
    image, text = TinyImageTower(), TinyTextTower()
    torch.manual_seed(0)
    config = ModelConfig(
        "tiny", "tiny", image.dim, text.dim, (image.version, text.version), embed_dim=EMBED,
        hidden_dim=0, dropout=0.0, image_blend=0.25, text_blend=0.1, whiten_dim=WHITEN,
    )  # fmt: skip
    model = ArtSimModel(config).eval()
    mean, projection = fit_whitening(np.random.default_rng(1).normal(size=(40, image.dim)), WHITEN)
    model.set_whitening(torch.from_numpy(mean), torch.from_numpy(projection))
    generator = torch.Generator().manual_seed(2)
    model.set_bridge(
        torch.randn(CLASSES, image.dim, generator=generator),
        torch.zeros(CLASSES),
        F.normalize(torch.randn(CLASSES, text.dim, generator=generator), dim=-1),
        weight=0.05,
        top=2,
        scale=1.0,
    )
    return model


def _tuned_state() -> dict[str, torch.Tensor]:
    state = TinyImageTower().state_dict()
    last = "blocks.2.weight"  # the last convolution, as finetune_blocks 1 would move it
    state[last] = state[last] + 0.2 * torch.randn(state[last].shape)
    return state


@pytest.fixture
def two_runs(write_run, synthetic_manifest, tmp_path):
    """The same heads, blend and bridge saved twice: with a fine-tuned tower and without."""
    model = _blended_bridged_model()
    tuned = write_run(tmp_path / "tuned", synthetic_manifest)
    plain = write_run(tmp_path / "plain", synthetic_manifest)
    torch.manual_seed(5)
    save_model(model, tuned, tower_state=_tuned_state())
    save_model(model, plain)
    return tuned, plain


def _image_paths(manifest, count=6):
    return sorted((manifest.parent / "images").glob("*.png"))[:count]


def test_only_the_trained_head_reads_the_fine_tuned_tower(two_runs, synthetic_manifest, tmp_path):
    tuned_run, plain_run = two_runs
    cache = tmp_path / "cache"
    paths = _image_paths(synthetic_manifest)
    plain = Embedder.from_run(plain_run, cache_dir=cache, device="cpu")
    before = plain.embed_images(paths)  # fills the frozen tower's cache first
    tuned = Embedder.from_run(tuned_run, cache_dir=cache, device="cpu")
    after = tuned.embed_images(paths)
    assert tuned.finetuned and not plain.finetuned
    # a cache of its own: the fine-tuned tower does not read the frozen rows as its own
    assert tuned.tuned_cache.folder != tuned.image_cache.folder
    assert tuned.image_cache.folder == plain.image_cache.folder
    frozen, fine = tuned.image_features(paths), tuned.tuned_image_features(paths)
    assert np.allclose(frozen, plain.image_features(paths))
    assert not np.allclose(fine, frozen, atol=1e-3)
    # the whitened frozen part and the bridge (in the frozen-text slot) are the frozen tower's
    assert np.allclose(after[:, EMBED:], before[:, EMBED:], atol=1e-6)
    # the trained head reads the fine-tuned features
    model = tuned.model
    with torch.no_grad():
        head = model.embed_image(torch.from_numpy(fine)).numpy()
    scale = np.sqrt(1.0 - model.config.bridge_weight) * np.sqrt(model.config.image_blend)
    assert np.allclose(after[:, :EMBED], scale * head, atol=1e-6)
    assert not np.allclose(after[:, :EMBED], before[:, :EMBED], atol=1e-3)
    # images in memory go through both towers the same way
    pictures = [load_rgb(path) for path in paths[:2]]
    assert np.allclose(tuned.embed_pil(pictures), after[:2], atol=1e-5)


def test_projecting_without_the_fine_tuned_features_is_refused(two_runs, synthetic_manifest):
    tuned = Embedder.from_run(two_runs[0], cache_dir=False, device="cpu")
    features = tuned.image_features(_image_paths(synthetic_manifest, 2))
    with pytest.raises(ValueError, match="fine-tuned tower"):
        tuned.project_image_features(features)


def test_the_frozen_baseline_of_a_fine_tuned_run_is_the_frozen_towers(
    two_runs, synthetic_manifest, tmp_path
):
    tuned_run, plain_run = two_runs
    cache = tmp_path / "cache"
    tuned = evaluate_run(tuned_run, synthetic_manifest, cache_dir=cache, write=False)
    plain = evaluate_run(plain_run, synthetic_manifest, cache_dir=cache, write=False)

    def figures(result):  # the baseline's own figures (not its comparison with the trained)
        return {
            task: None if part is None else (part.figures, part.open_set)
            for task, part in result.baselines.frozen.items()
        }

    assert figures(tuned) == figures(plain)
    assert tuned.baselines.figure("frozen", "image") is not None
    assert tuned.model_id != plain.model_id


def test_bench_finetune_gives_the_evaluations_figures(
    two_runs, synthetic_manifest, tmp_path, monkeypatch
):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_finetune.py"
    monkeypatch.syspath_prepend(str(path.parent))  # the benchmarks import their harness
    spec = importlib.util.spec_from_file_location("bench_finetune", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tuned_run, plain_run = two_runs
    for run in two_runs:  # the runs' own cache (their config names none: the default one)
        (run / "config.yaml").write_text(
            (run / "config.yaml").read_text() + f"cache_dir: {tmp_path / 'cache'}\n"
        )
    tuned = bench.image_recalls(tuned_run, synthetic_manifest)
    plain = bench.image_recalls(plain_run, synthetic_manifest)
    result = evaluate_run(tuned_run, synthetic_manifest, cache_dir=tmp_path / "cache", write=False)
    assert tuned["frozen"] == result.baselines.figure("frozen", "image")
    assert tuned["model"] == result.retrieval.figure("image")
    assert tuned["frozen"] == plain["frozen"]
    assert plain["tuned"] is None and plain["old path"] is None
    assert tuned["tuned"] is not None and tuned["old path"] is not None
    # the per-query hits give the recalls, and the sign test counts the queries that differ
    assert tuned["hits"]["frozen"].mean() == tuned["frozen"]
    assert tuned["hits"]["tuned"].mean() == tuned["tuned"]
    won = int((tuned["hits"]["tuned"] & ~tuned["hits"]["frozen"]).sum())
    assert bench.versus_frozen(tuned).startswith(f"+{won}/-")
    assert bench.versus_frozen(plain) is None
    # the model's frozen part alone; the fine-tuned one refitted on the run's training originals
    assert tuned["frozen whitened"] == plain["frozen whitened"] is not None
    assert tuned["tuned whitened"] is not None and plain["tuned whitened"] is None
    assert bench.versus_frozen(tuned, whitened=True).startswith("+")
