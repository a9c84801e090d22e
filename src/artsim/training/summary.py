"""A run's ``summary.json``: how it ended, its best epoch, its data and its resolved config.

Reports read this file, never the live process (:mod:`artsim.runfolder` writes it).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from artsim import runfolder
from artsim.runfolder import read_metrics
from artsim.training.inputs import RunData
from artsim.training.stage import is_finite_number


def write_summary(out, config, heads, stages, data: RunData, seconds, blend=None) -> dict[str, Any]:
    """Write ``summary.json`` of a run that trained ``stages`` (none: a NaN loss stopped
    ``heads``) in ``seconds``, with the blend chosen; returns what it wrote."""
    rows = read_metrics(out)
    scored = [row for row in rows if is_finite_number(row.get("val/loss"))]
    best_row = min(scored, key=lambda r: r["val/loss"]) if scored else {}
    failed = not stages  # a NaN loss: the stage that failed is `heads`' or the fine-tune's
    last_stage = stages[-1] if stages else heads
    summary = {
        "epochs_completed": len(rows),
        "stop_reason": "nan_loss" if failed else heads.reason,
        "best_epoch": best_row.get("epoch"),
        "best_val_loss": best_row.get("val/loss"),
        # a stage taken from its marker on a resume has no optimiser: its last row's rate
        "final_lr": last_stage.final_lr() or (rows[-1].get("lr") if rows else None) or config.lr,
        "stages": [
            {
                "stage": s.name,
                "stop_reason": s.reason,
                "kept": s.kept,
                "best_val_loss": s.best_score(),
                **s.details,
            }
            for s in stages
        ],
        "val_fraction": None if config.split else config.val_fraction,
        "split_file": config.split,
        "seed": config.seed,
        "image_tower": config.image_tower,
        "text_tower": config.text_tower,
        "train_size": data.sizes["train"],
        "val_size": data.sizes["val"],
        "calib_size": data.sizes.get("calib", {"items": 0, "groups": 0}),
        "calib_fraction": None if config.split else config.calib_fraction,
        "data": str(Path(config.data).resolve()),
        "data_fingerprint": data.manifest.fingerprint(),
        "skipped_rows": len(data.manifest.errors),
        "train_seconds": round(seconds, 2),
        # a heads stage finished before a resume has no live checkpoint callback: its file
        "best_checkpoint": str(
            heads.checkpoint.best_model_path
            or (heads.folder / "best.ckpt" if (heads.folder / "best.ckpt").is_file() else "")
        ),
        "final": rows[-1] if rows else {},
        "best": best_row,
        "config": asdict(config),
        "blend": blend,
    }
    runfolder.write_summary(out, summary)
    return summary
