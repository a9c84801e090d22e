"""Training cost: head epochs on cached features against towers in every step; feature speed.

Head epochs on cached tower features vs the towers run in every step, and feature extraction
throughput (empty cache, forward only, warm cache) with its time split.

On one subsample of a real manifest (whole groups, seeded), in one process, side by side:

1. epochs of ``TripletModule`` under a Lightning ``Trainer`` (the heads ``artsim train`` builds,
   ``TrainConfig`` defaults, ``GroupBatchSampler`` batches) on cached features, and the same
   epochs with efficientnet-lite0 and e5-small run on every step's batch (frozen, no_grad);
2. images/s of ``compute_image_features`` with an empty cache, of the bare tower forward on
   pre-made tensors and with a warm cache; texts/s of e5-small with an empty and a warm cache;
   and where one image's time goes: sha256, decode, resize, normalise, forward.

Prints its tables as the section "### Heads and features" (``--write BENCHMARKS.md`` puts them
there). A benchmark, not a test: nothing here asserts on a timing.

    .venv/bin/python benchmarks/bench_train.py [--data MANIFEST] [--items 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

import harness
from artsim.data.manifest.items import Item
from artsim.data.manifest.manifest import load_manifest
from artsim.data.pictures.images import load_rgb
from artsim.model.features import (
    FeatureCache,
    compute_image_features,
    compute_text_features,
    file_key,
)
from artsim.model.heads import ModelConfig
from artsim.model.towers import ImageTower, TextTower, create_image_tower, create_text_tower
from artsim.training.config import TrainConfig
from artsim.training.datamodule import FeatureDataModule, build_feature_set
from artsim.training.module import TripletModule

SECTION = "### Heads and features"
DEFAULTS = TrainConfig()


def default_data() -> str:
    for candidate in ("/tmp/demo-check/manifest.csv", "data/demo/manifest.csv"):
        if Path(candidate).is_file():
            return candidate
    return "data/demo/manifest.csv"


def subsample(items: Sequence[Item], count: int, seed: int) -> list[Item]:
    """Whole groups in seeded order until ``count`` items (the last group may be cut)."""
    by_group: dict[str, list[Item]] = {}
    for item in items:
        by_group.setdefault(item.group, []).append(item)
    groups = sorted(by_group)
    random.Random(seed).shuffle(groups)
    chosen: list[Item] = []
    for group in groups:
        chosen.extend(by_group[group][: count - len(chosen)])
        if len(chosen) >= count:
            break
    return chosen


def machine() -> dict[str, str]:
    model, cores_used = harness.cpu_model(), harness.cores()
    return {
        "nproc": str(cores_used),
        "cpu": model,
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "lightning": pl.__version__,
        "python": platform.python_version(),
    }


def timed(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


# -- 2. feature extraction ----------------------------------------------------------------------


def stage_split(tower: ImageTower, paths: Sequence[Path], batch_size: int) -> dict[str, float]:
    """Seconds per image of each stage, one image at a time on one thread (forward in batches)."""
    seconds = {"sha256": 0.0, "decode": 0.0, "resize": 0.0, "normalise": 0.0}
    tensors = []
    size = (tower.image_size, tower.image_size)
    for path in paths:
        seconds["sha256"] += timed(lambda p=path: file_key(p))[0]
        spent, image = timed(lambda p=path: load_rgb(p))
        seconds["decode"] += spent
        # pil_to_tensor is convert + bicubic resize, then float normalisation: the resize alone
        # is timed on its own, the normalisation is the rest of preprocess.
        seconds["resize"] += timed(
            lambda i=image: i.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        )[0]
        spent, tensor = timed(lambda i=image: tower.preprocess(i))
        seconds["normalise"] += spent
        tensors.append(tensor)
    seconds["normalise"] = max(0.0, seconds["normalise"] - seconds["resize"])
    pixels = torch.stack(tensors)
    seconds["forward"] = forward_seconds(tower, pixels, batch_size)
    return {key: value / len(paths) for key, value in seconds.items()}


@torch.no_grad()
def forward_seconds(tower: ImageTower, pixels: torch.Tensor, batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(pixels), batch_size):
        tower(pixels[start : start + batch_size])
    return time.perf_counter() - started


# glibc serves allocations over M_MMAP_THRESHOLD (dynamic, at most 32 MiB) with fresh mmap'd
# pages and gives them back on free: every batch's large activations then page-fault again.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}
PROBE_BATCHES = (4, 32)
MALLOC_NOTE = (
    "set as `make` sets them"
    if all(os.environ.get(k) for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))
    else "glibc defaults"
)
PROBE_IMAGES = 96


@torch.no_grad()
def forward_probe(tower_name: str, images: int = PROBE_IMAGES) -> dict[str, list[float]]:
    """In a child process: ms and minor page faults per image of the bare forward, per batch."""
    tower = create_image_tower(tower_name)
    pixels = torch.randn(images, 3, tower.image_size, tower.image_size)
    out = {}
    for batch_size in PROBE_BATCHES:
        tower(pixels[:batch_size])  # warm-up
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        seconds = forward_seconds(tower, pixels, batch_size)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        out[str(batch_size)] = [seconds / images * 1000, faults / images]
    return out


def run_probes(tower_name: str, images: int) -> dict[str, dict[str, list[float]]]:
    """The forward probe in two fresh processes, glibc's default allocator settings and fixed."""
    results = {}
    probe = ["--forward-probe", "--image-tower", tower_name, "--probe-images", str(images)]
    for name, extra in (("default", {}), ("malloc", MALLOC_ENV)):
        env = {k: v for k, v in os.environ.items() if k not in MALLOC_ENV} | extra
        done = subprocess.run(
            [sys.executable, __file__, *probe],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def extraction(
    image_tower: ImageTower,
    text_tower: TextTower,
    items: Sequence[Item],
    scratch: Path,
    repeats: int,
    batch_size: int,
) -> dict:
    paths = [item.image for item in items]
    texts = [item.text for item in items]
    out: dict = {"images": len(paths), "texts": len(texts), "size": image_tower.image_size}
    out["unique_texts"] = len({t for t in texts if t.strip()})
    # The files are read once first: "empty cache" means no cached features, not a cold disk.
    for path in paths:
        file_key(path)
    with torch.no_grad():  # warm-up: first calls allocate
        image_tower(torch.stack([image_tower.preprocess(load_rgb(p)) for p in paths[:8]]))
    text_tower.encode(texts[:8])

    cold = []
    for repeat in range(repeats):
        cache = FeatureCache(scratch / f"image-cold-{repeat}", image_tower.version)
        spent, features = timed(
            lambda c=cache: compute_image_features(image_tower, paths, c, batch_size=batch_size)
        )
        cold.append(spent)
    out["image_features"] = features
    out["image_cold_s"] = statistics.median(cold)
    warm = [
        timed(
            lambda: compute_image_features(
                image_tower,
                paths,
                FeatureCache(scratch / "image-cold-0", image_tower.version),
                batch_size=batch_size,
            )
        )[0]
        for _ in range(max(3, repeats))
    ]
    out["image_warm_s"] = statistics.median(warm)

    pixels = torch.stack([image_tower.preprocess(load_rgb(p)) for p in paths])
    out["image_forward_s"] = statistics.median(
        forward_seconds(image_tower, pixels, batch_size) for _ in range(repeats)
    )
    del pixels
    out["split"] = stage_split(image_tower, paths, batch_size)

    cold = []
    for repeat in range(repeats):
        cache = FeatureCache(scratch / f"text-cold-{repeat}", text_tower.version)
        spent, text_features = timed(lambda c=cache: compute_text_features(text_tower, texts, c))
        cold.append(spent)
    out["text_features"] = text_features
    out["text_cold_s"] = statistics.median(cold)
    out["text_warm_s"] = statistics.median(
        timed(
            lambda: compute_text_features(
                text_tower, texts, FeatureCache(scratch / "text-cold-0", text_tower.version)
            )
        )[0]
        for _ in range(max(3, repeats))
    )
    return out


# -- 1. head epochs ------------------------------------------------------------------------------


class EpochTimer(pl.Callback):
    """Wall time of every training epoch and the size of every step's batch."""

    def __init__(self):
        self.seconds: list[float] = []
        self.batch_sizes: list[list[int]] = []
        self._started = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.batch_sizes.append([])
        self._started = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batch_sizes[-1].append(len(batch["label"]))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.seconds.append(time.perf_counter() - self._started)


class IndexSet(Dataset):
    """Like a FeatureSet, but rows carry their item index instead of features."""

    def __init__(self, features):
        self.labels, self.has_text, self.affinity = (
            features.labels,
            features.has_text,
            features.affinity,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {
            "index": torch.tensor(index),
            "has_text": self.has_text[index],
            "label": self.labels[index],
            "affinity": self.affinity[index],
        }


class TowerForwardModule(TripletModule):
    """TripletModule whose every step decodes its images and runs both towers (frozen)."""

    def __init__(self, model_config, config, image_tower, text_tower, items):
        super().__init__(model_config, config)
        # A tuple, not attributes: the towers stay out of the module (and out of the optimiser,
        # and out of Lightning's train() call that would put BatchNorm in training mode).
        self.towers = (image_tower, text_tower)
        self.paths = [item.image for item in items]
        self.texts = [item.text for item in items]
        self.pool = ThreadPoolExecutor(max_workers=2)  # as compute_image_features loads images
        self.stage_seconds = {"load": 0.0, "image": 0.0, "text": 0.0}

    def _load(self, index: int) -> torch.Tensor:
        return self.towers[0].preprocess(load_rgb(self.paths[index]))

    def training_step(self, batch, batch_index):
        image_tower, text_tower = self.towers
        indices = batch["index"].tolist()
        with torch.no_grad():
            started = time.perf_counter()
            pixels = torch.stack(list(self.pool.map(self._load, indices)))
            loaded = time.perf_counter()
            image = image_tower(pixels).float()
            imaged = time.perf_counter()
            text = torch.zeros(len(indices), text_tower.dim)
            rows = [k for k, i in enumerate(indices) if self.texts[i].strip()]
            if rows:
                text[rows] = text_tower.encode([self.texts[indices[k]] for k in rows]).float()
            texted = time.perf_counter()
        self.stage_seconds["load"] += loaded - started
        self.stage_seconds["image"] += imaged - loaded
        self.stage_seconds["text"] += texted - imaged
        return super().training_step({**batch, "image": image, "text": text}, batch_index)


def fit_epochs(module: TripletModule, train_set, config: TrainConfig, epochs: int) -> EpochTimer:
    timer = EpochTimer()
    datamodule = FeatureDataModule(
        train_set, train_set, config.groups_per_batch, config.items_per_group, config.seed
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        deterministic=True,  # as artsim train runs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no validation", "few workers": both on purpose
        trainer.fit(module, datamodule=datamodule)
    return timer


def head_epochs(
    image_tower: ImageTower,
    text_tower: TextTower,
    items: Sequence[Item],
    image_features: np.ndarray,
    text_features: np.ndarray,
    data: str,
    cached_epochs: int,
    tower_epochs: int,
) -> dict:
    config = TrainConfig(data=data, progress=False)
    groups = sorted({item.group for item in items})
    feature_set = build_feature_set(
        items, image_features, text_features, {g: k for k, g in enumerate(groups)}
    )
    model_config = ModelConfig(
        image_tower=image_tower.name,
        text_tower=text_tower.name,
        image_feature_dim=int(image_features.shape[1]),
        text_feature_dim=int(text_features.shape[1]),
        tower_versions=(image_tower.version, text_tower.version),
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
    )
    # Epoch 0 of each is a warm-up (first allocations, Lightning's set-up); the rest are timed.
    pl.seed_everything(config.seed, verbose=False)
    cached = fit_epochs(TripletModule(model_config, config), feature_set, config, 1 + cached_epochs)
    pl.seed_everything(config.seed, verbose=False)
    module = TowerForwardModule(model_config, config, image_tower, text_tower, items)
    towers = fit_epochs(module, IndexSet(feature_set), config, 1 + tower_epochs)
    module.pool.shutdown()
    return {
        "groups": len(groups),
        "steps": len(cached.batch_sizes[0]),
        "batch_sizes": cached.batch_sizes[0],
        "same_batches": cached.batch_sizes[0] == towers.batch_sizes[0],
        "cached_s": statistics.median(cached.seconds[1:]),
        "cached_first_s": cached.seconds[0],
        "cached_all": cached.seconds,
        "towers_s": statistics.median(towers.seconds[1:]),
        "towers_all": towers.seconds,
        "tower_stages": {
            k: v / (1 + tower_epochs) for k, v in module.stage_seconds.items()
        },  # per epoch
    }


# -- report --------------------------------------------------------------------------------------


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds > 0 else "-"


def section(
    args, info: dict, extract: dict, heads: dict, probes: dict, loads: tuple, towers_s: tuple
) -> str:
    n_img, n_txt = extract["images"], extract["texts"]
    split = extract["split"]
    split_total = sum(split.values())
    stages = heads["tower_stages"]
    tower_epoch_mean = statistics.fmean(heads["towers_all"])
    head_in_tower_epoch = tower_epoch_mean - sum(stages.values())
    demo = 6400  # the demo corpus: 1600 originals x 4 items
    best = min(
        (
            (b, label, probes[name][str(b)][0])
            for b in PROBE_BATCHES
            for name, label in (("default", "glibc default"), ("malloc", "mmap threshold 32 MiB"))
        ),
        key=lambda cell: cell[2],
    )
    image, text, size = args.image_tower, args.text_tower, extract["size"]
    lines = [
        f"`benchmarks/bench_train.py --items {args.items}`: {len(heads['batch_sizes'])} steps "
        f"per epoch over {n_img} items ({heads['groups']} whole groups, seed {args.seed}) of "
        f"`{args.data}`, {image} + {text}, heads and batches as `artsim train` "
        f"makes them (TrainConfig defaults: embed {DEFAULTS.embed_dim}, hidden "
        f"{DEFAULTS.hidden_dim or 'none (linear)'}, {DEFAULTS.groups_per_batch} groups x "
        f"{DEFAULTS.items_per_group} items per batch; batch sizes {heads['batch_sizes']}). Machine: {info['nproc']} cores (`nproc`), "
        f"`{info['cpu']}`, torch {info['torch']} with {info['threads']} threads "
        f"(`torch.get_num_threads()`), Lightning {info['lightning']}, Python {info['python']}. "
        f"glibc allocator variables in this process: {MALLOC_NOTE}. "
        "Every row comes from the same single run, so the ratios compare numbers measured "
        f"side by side. Load average (1 min) {loads[0]:.2f} at the start, {loads[1]:.2f} at "
        f"the end.{(' ' + args.note) if args.note else ''}",
        "",
        "| measurement | what is timed | result |",
        "|---|---|---:|",
        f"| head epoch, cached features | `TripletModule` steps under a Lightning `Trainer` on "
        f"features already in memory (no validation, no checkpoints); median of "
        f"{args.cached_epochs} epochs after a warm-up epoch ({heads['cached_first_s']:.2f} s) | "
        f"{heads['cached_s']:.3f} s/epoch |",
        f"| head epoch, towers in every step | same items, same batches, same heads and "
        "optimiser; each step loads its images (2 threads, as `compute_image_features`), runs "
        f"{image} (on the whole batch) and {text} under `torch.no_grad` (frozen), then the same head "
        f"step; median of {args.tower_epochs} epochs after a warm-up epoch | "
        f"{heads['towers_s']:.2f} s/epoch |",
        f"| ratio | towers in every step / cached features | "
        f"{heads['towers_s'] / heads['cached_s']:,.0f}x |",
        f"| image features, empty cache | `compute_image_features` with a new, empty "
        f"`FeatureCache`: sha256 + decode + resize + forward (batches of {args.batch_size}) + "
        f"shard writes; median of {args.repeats} | {rate(n_img, extract['image_cold_s'])} "
        f"images ({extract['image_cold_s']:.2f} s) |",
        f"| image tower forward only | `tower(pixels)` on pre-made {size}x{size} tensors, batches of "
        f"{args.batch_size}, no_grad; median of {args.repeats} | "
        f"{rate(n_img, extract['image_forward_s'])} images ({extract['image_forward_s']:.2f} s) |",
        f"| image features, warm cache | `compute_image_features` with a new `FeatureCache` "
        f"object on the filled folder (sha256 of every file + shard read, no tower) | "
        f"{rate(n_img, extract['image_warm_s'])} images ({extract['image_warm_s']:.3f} s) |",
        f"| text features, empty cache | `compute_text_features`, {text}, {n_txt} texts "
        f"({extract['unique_texts']} distinct non-empty) in batches of 64 | "
        f"{rate(n_txt, extract['text_cold_s'])} texts ({extract['text_cold_s']:.2f} s) |",
        f"| text features, warm cache | the same with a new `FeatureCache` on the filled folder "
        f"| {rate(n_txt, extract['text_warm_s'])} texts ({extract['text_warm_s']:.3f} s) |",
        f"| tower load | `create_image_tower` / `create_text_tower`, once per process | "
        f"{towers_s[0]:.2f} s / {towers_s[1]:.2f} s |",
        "",
        "Where one image's feature time goes (one image at a time on the main thread, forward "
        f"in batches of {args.batch_size}; ms per image):",
        "",
        f"| sha256 (cache key) | decode (`load_rgb`) | resize (RGB, bicubic to {size}) | "
        "normalise (to float CHW) | forward | sum |",
        "|---:|---:|---:|---:|---:|---:|",
        "| "
        + " | ".join(
            f"{split[k] * 1000:.2f} ({split[k] / split_total:.0%})"
            for k in ("sha256", "decode", "resize", "normalise", "forward")
        )
        + f" | {split_total * 1000:.2f} |",
        "",
        f"The bare {image} forward by batch size, each in a fresh process on "
        f"{args.probe_images} random {size}x{size} images, with glibc's default allocator settings and with "
        + ", ".join(f"`{k}={v}`" for k, v in MALLOC_ENV.items())
        + " (ms per image, minor page faults per image in brackets):",
        "",
        "| allocator | " + " | ".join(f"batch {b}" for b in PROBE_BATCHES) + " |",
        "|---|" + "---:|" * len(PROBE_BATCHES),
        *(
            f"| {label} | "
            + " | ".join(
                f"{probes[name][str(b)][0]:.1f} ({probes[name][str(b)][1]:,.0f})"
                for b in PROBE_BATCHES
            )
            + " |"
            for name, label in (("default", "glibc default"), ("malloc", "mmap threshold 32 MiB"))
        ),
        "",
        f"The fastest cell is {best[2]:.1f} ms per image ({best[1]}, batch {best[0]}), "
        f"{probes['default']['32'][0] / best[2]:.1f}x faster than glibc's default at batch 32, "
        "the batch `compute_image_features` used before this measurement (it now uses 4 on CPU, "
        "and `make` sets the two variables): large activations freed and "
        "allocated again each batch come back as fresh zeroed pages (the page-fault column).",
        "",
        "The epoch with towers, per epoch: "
        f"loading images {stages['load']:.2f} s, {image} {stages['image']:.2f} s, "
        f"{text} {stages['text']:.2f} s, the rest (head step, Lightning) "
        f"{max(0.0, head_in_tower_epoch):.2f} s (means over all its epochs, warm-up included: "
        f"{tower_epoch_mean:.2f} s per epoch). The image tower runs on the step's whole batch "
        f"({max(heads['batch_sizes'])} images), where the page faults above are at their worst.",
        "",
        f"Extrapolated linearly, not measured: the demo corpus' {demo} images cost about "
        f"{demo / n_img * extract['image_cold_s']:.0f} s of image features with an empty cache "
        f"(forward alone {demo / n_img * extract['image_forward_s']:.0f} s) and "
        f"{demo / n_txt * extract['text_cold_s']:.0f} s of text features, once; an epoch on "
        f"its 80% training split costs {0.8 * demo / n_img * heads['cached_s']:.2f} s with "
        f"cached features and {0.8 * demo / n_img * heads['towers_s']:.0f} s with the towers "
        "in every step (40 epochs at most). Timings on this shared machine vary between runs; "
        "the ratios within one run are the figures to compare.",
    ]
    return "\n".join(lines) + "\n"


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the quick kit's corpus, the tiny towers, one epoch and one timing
    of each, eight images a probe."""
    return [
        *("--data", str(kit.manifest), "--items", "24", "--image-tower", "tiny"),
        *("--text-tower", "tiny", "--cached-epochs", "1", "--tower-epochs", "1"),
        *("--repeats", "1", "--probe-images", "8"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="manifest (real images)")
    parser.add_argument("--items", type=int, default=256, help="items in the subsample")
    parser.add_argument("--seed", type=int, default=0, help="which groups the subsample takes")
    parser.add_argument("--cached-epochs", type=int, default=5, help="timed cached epochs")
    parser.add_argument("--tower-epochs", type=int, default=2, help="timed epochs with towers")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each extraction timing")
    parser.add_argument(
        "--batch-size", type=int, default=4, help="image feature batches (artsim's CPU default)"
    )
    parser.add_argument("--image-tower", default="efficientnet-lite0", help="the image tower")
    parser.add_argument("--text-tower", default="e5-small", help="the text tower")
    parser.add_argument(
        "--probe-images", type=int, default=PROBE_IMAGES, help="images of each forward probe"
    )
    parser.add_argument("--note", default="", help="a sentence added to the section")
    parser.add_argument("--forward-probe", action="store_true", help=argparse.SUPPRESS)
    args = harness.parse_args(parser, argv, quick)
    if args.forward_probe:
        print(json.dumps(forward_probe(args.image_tower, args.probe_images)))
        return 0

    loads = [os.getloadavg()[0]]
    begun = time.perf_counter()
    info = machine()
    manifest = load_manifest(args.data, check_images=False)
    items = subsample(manifest.items, args.items, args.seed)
    print(f"{len(items)} items of {args.data}; {info}", flush=True)
    image_load_s, image_tower = timed(lambda: create_image_tower(args.image_tower))
    text_load_s, text_tower = timed(lambda: create_text_tower(args.text_tower))

    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        extract = extraction(
            image_tower, text_tower, items, Path(scratch), args.repeats, args.batch_size
        )
    print(
        f"extraction: images cold {extract['image_cold_s']:.2f} s, forward only "
        f"{extract['image_forward_s']:.2f} s, warm {extract['image_warm_s']:.3f} s; texts cold "
        f"{extract['text_cold_s']:.2f} s, warm {extract['text_warm_s']:.3f} s; split (s/image) "
        f"{ {k: round(v, 5) for k, v in extract['split'].items()} }",
        flush=True,
    )
    probes = run_probes(args.image_tower, args.probe_images)
    print(f"forward probes (ms/image, minor faults/image): {probes}", flush=True)
    heads = head_epochs(
        image_tower,
        text_tower,
        items,
        extract["image_features"],
        extract["text_features"],
        args.data,
        args.cached_epochs,
        args.tower_epochs,
    )
    print(
        f"epochs: cached {[round(s, 3) for s in heads['cached_all']]}, towers "
        f"{[round(s, 2) for s in heads['towers_all']]}, stages/epoch "
        f"{ {k: round(v, 2) for k, v in heads['tower_stages'].items()} }, "
        f"same batches: {heads['same_batches']}",
        flush=True,
    )
    loads.append(os.getloadavg()[0])
    block = section(args, info, extract, heads, probes, tuple(loads), (image_load_s, text_load_s))
    print(f"total {time.perf_counter() - begun:.0f} s\n")
    written = harness.Section(SECTION, args)
    written.line(block)
    written.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
