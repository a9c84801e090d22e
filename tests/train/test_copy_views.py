"""Copy groups: strong views of originals, their cached features, and a run that trains on them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from artsim.cli.train import main
from artsim.data.families.training.copyaug import CHANGES, copy_view
from artsim.data.manifest.items import VIEW_ROLE, Item
from artsim.data.manifest.manifest import load_manifest
from artsim.errors import UserError
from artsim.losses import LossWeights
from artsim.model.features import FeatureCache, file_key
from artsim.model.towers import create_image_tower
from artsim.model.views import compute_view_features, view_key, view_rng
from artsim.runfolder import read_metrics
from artsim.training.config import parse_loss_weights, resolve_config
from artsim.training.select import SelectionSet
from artsim.training.views import view_items


def _picture(path, colour=(200, 40, 40), size=(64, 48)):
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), colour), (8, 8))
    image.save(path)
    return path


def test_copy_view_is_seeded_rgb_and_changes_the_picture():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    first, names = copy_view(image, np.random.default_rng(5))
    again, names_again = copy_view(image, np.random.default_rng(5))
    assert names == names_again and np.array_equal(np.asarray(first), np.asarray(again))
    assert first.mode == "RGB" and names[0] == "crop"
    assert 3 <= len(names) - 1 <= 5 and set(names[1:]) <= set(CHANGES)
    assert "jpeg" not in names[1:-1]  # JPEG, when drawn, is the last change
    other, _ = copy_view(image, np.random.default_rng(6))
    assert first.size != other.size or not np.array_equal(np.asarray(first), np.asarray(other))


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_every_change_keeps_an_rgb_picture_even_a_tiny_one(name):
    for size in ((1, 1), (9, 5), (64, 40)):
        out = CHANGES[name](Image.new("RGB", size, (10, 200, 30)), np.random.default_rng(1))
        assert out.mode == "RGB" and min(out.size) >= 1


class _Counting(torch.nn.Module):
    """A tiny tower that counts the pictures it embeds."""

    def __init__(self):
        super().__init__()
        self.inner = create_image_tower("tiny")
        self.dim, self.version, self.seen = self.inner.dim, self.inner.version, 0

    def preprocess(self, image):
        return self.inner.preprocess(image)

    def forward(self, pixels):
        self.seen += len(pixels)
        return self.inner(pixels)


def test_view_features_are_cached_under_their_own_keys(tmp_path):
    paths = [_picture(tmp_path / "a.png"), _picture(tmp_path / "b.png", (20, 20, 220))]
    tower = _Counting()
    cache = FeatureCache(tmp_path / "cache", tower.version)
    rows = compute_view_features(tower, paths, 3, cache, seed=0)
    assert rows.shape == (6, tower.dim) and tower.seen == 6
    # rows are image-major: image 1's view 2 is row 5, drawn from its own seeded generator
    image = Image.open(paths[1]).convert("RGB")
    view, _ = copy_view(image, view_rng(file_key(paths[1]), 2, 0))
    expected = tower.inner(tower.preprocess(view)[None]).detach().numpy()[0]
    assert np.allclose(rows[5], expected, atol=1e-5)
    # a second call (another process: a fresh cache object) embeds nothing
    again = compute_view_features(tower, paths, 3, FeatureCache(tmp_path / "cache", tower.version))
    assert tower.seen == 6 and np.allclose(again, rows)
    # another seed draws other views; the picture's own features key is not reused
    assert view_key(file_key(paths[0]), 0, 1) != view_key(file_key(paths[0]), 0, 0)
    assert file_key(paths[0]) not in FeatureCache(tmp_path / "cache", tower.version)
    compute_view_features(tower, paths, 1, cache, seed=1)
    assert tower.seen == 8


def test_view_items_share_the_group_but_have_no_text(tmp_path):
    original = Item("o1", "g1", "original", tmp_path / "o1.png", text="owl", artist="ann")
    views = view_items([original], 2)
    assert [v.id for v in views] == ["o1~view0", "o1~view1"]
    assert all(v.group == "g1" and not v.has_text and v.artist == "ann" for v in views)
    assert all(not v.is_original and v.role == VIEW_ROLE for v in views)


def test_views_are_never_queries_when_a_blend_is_scored(tmp_path):
    original = Item("o1", "g1", "original", tmp_path / "o1.png", text="owl")
    derived = Item("d1", "g1", "generated", tmp_path / "d1.png", text="an owl")
    items = [original, derived, *view_items([original], 2)]
    vectors = np.eye(4, dtype=np.float32)
    chosen = SelectionSet("fold", items, vectors, vectors, vectors, vectors)
    assert chosen.queries.tolist() == [1] and chosen.gallery.tolist() == [0]


def test_loss_weights_from_the_command_line_go_over_the_defaults_and_the_file(tmp_path):
    assert parse_loss_weights(["copy=0.5", "koleo=0.1"]) == {"copy": 0.5, "koleo": 0.1}
    for bad in ("copy", "nope=1", "copy=lots"):
        with pytest.raises(UserError, match="--loss-weight"):
            parse_loss_weights([bad])
    config = resolve_config(data="x.csv", loss_weights={"copy": 0.5})
    assert config.loss_weights == {
        "image": 1.0,
        "text": 1.0,
        "cross": 1.0,
        "koleo": 1.0,
        "copy": 0.5,
    }
    assert resolve_config(data="x.csv", loss_weights={"koleo": 0}).loss_weights["koleo"] == 0
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"loss_weights": {"image": 0.5}}))
    config = resolve_config(path, data="x.csv", loss_weights={"koleo": 0.1})
    assert config.loss_weights == {"image": 0.5, "koleo": 0.1}
    # a file's mapping replaces the defaults: what it leaves out is 0 for koleo (a run folder's
    # config.yaml from before KoLeo was the default resumes as it was trained)
    weights = LossWeights(**resolve_config(path, data="x.csv").loss_weights)
    assert (weights.image, weights.text, weights.koleo, weights.copy) == (0.5, 1.0, 0.0, 0.0)
    assert LossWeights(**resolve_config(data="x.csv").loss_weights).koleo == 1.0
    with pytest.raises(UserError, match="at least one"):
        resolve_config(data="x.csv", loss_weights={"image": 0, "text": 0, "cross": 0, "koleo": 1})
    # the copy part alone is a loss that learns
    resolve_config(data="x.csv", loss_weights={"image": 0, "text": 0, "cross": 0, "copy": 1})
    with pytest.raises(UserError, match="--copy-temperature"):
        resolve_config(data="x.csv", copy_temperature=0.0)
    with pytest.raises(UserError, match="--copy-views"):
        resolve_config(data="x.csv", copy_views=-1)


def test_a_run_with_copy_views_and_the_copy_parts_trains_and_logs_them(
    training_manifest, feature_cache, tiny_args, tmp_path
):
    out = tmp_path / "run"
    extra = ["--max-epochs", "2", "--copy-views", "2"]
    extra += [
        "--loss-weight",
        "copy=0.5",
        "--loss-weight",
        "koleo=0.1",
        "--copy-temperature",
        "0.2",
    ]
    assert main(tiny_args(training_manifest, out, feature_cache, *extra)) == 0
    rows = read_metrics(out)
    assert rows and all(row["train/copy_loss"] > 0 for row in rows)
    assert all(np.isfinite(row["train/koleo_loss"]) for row in rows)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["copy_views"] == 2 and config["loss_weights"]["copy"] == 0.5
    summary = json.loads((out / "summary.json").read_text())
    # the split and its sizes are the manifest's: views only join the heads' training batches
    assert summary["train_size"]["items"] == len(
        [line for line in (out / "split.csv").read_text().splitlines()[1:] if ",train" in line]
    )
    # every view of every training original (seed 0) is in the cache; none of the others'
    manifest = load_manifest(training_manifest)
    sides = dict(line.split(",")[:2] for line in (out / "split.csv").read_text().splitlines()[1:])
    cache = FeatureCache(feature_cache, create_image_tower("tiny").version)
    for item in manifest.items:
        if item.is_original:
            keys = [view_key(file_key(item.image), k, 0) for k in range(2)]
            assert all((key in cache) == (sides[item.id] == "train") for key in keys)


def test_a_paired_tower_embeds_each_view_through_both_parts(tmp_path):
    """The default image tower is a pair (content + copy): each part sees the view through its
    own preprocessing, and a view's row is the two parts' features side by side."""
    paths = [_picture(tmp_path / "a.png"), _picture(tmp_path / "b.png", (20, 20, 220))]
    tower = create_image_tower("tiny+tiny-copy")
    cache = FeatureCache(tmp_path / "cache", tower.version)
    rows = compute_view_features(tower, paths, 2, cache, seed=0)
    assert rows.shape == (4, tower.dim)
    image = Image.open(paths[1]).convert("RGB")
    view, _ = copy_view(image, view_rng(file_key(paths[1]), 1, 0))
    expected = np.concatenate(
        [part.features_of_images([view]).detach().numpy()[0] for part in tower.parts]
    )
    assert np.allclose(rows[3], expected, atol=1e-5)


def test_fine_tuning_a_paired_tower_is_refused_in_one_line_before_anything_runs():
    with pytest.raises(UserError, match="--image-tower efficientnet-lite0-gem, no copy score"):
        resolve_config(data="x.csv", finetune_epochs=1)
    with pytest.raises(UserError, match="--image-tower tiny, no copy score"):
        resolve_config(data="x.csv", finetune_epochs=1, image_tower="tiny+tiny-copy")
    assert resolve_config(data="x.csv", finetune_epochs=1, image_tower="tiny").finetune_epochs == 1
