"""A copy of a run whose model is its trained heads alone (no blend with the frozen towers).

The blend of trained and frozen scores can hide what a change does to the heads themselves
(BENCHMARKS.md, Copy groups): this writes ``OUT`` with the run's files and its model saved with
``image_blend = text_blend = 1``, ``fused_image_weight = 0.5`` and no ConSE bridge, to evaluate
like any run (``benchmarks/bench_generalisation.py --run "heads alone=OUT"``).

    python tools/heads_alone.py runs/demo /tmp/demo-heads
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from artsim import runfolder
from artsim.model.heads import load_model, save_model

COPIED = (
    runfolder.CONFIG_FILE,
    runfolder.SPLIT_FILE,
    runfolder.SUMMARY_FILE,
    runfolder.METRICS_FILE,
    runfolder.PROBLEMS_FILE,
)
CARD_OWN = ("format_version", "config", "model_id", "has_finetuned_image_tower")


def heads_alone(run: Path, out: Path) -> Path:
    """Write ``out``: the run's files and its model with the blend set to the heads alone."""
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    model, card, tower_state = load_model(run)
    model.config.image_blend, model.config.text_blend = 1.0, 1.0
    model.config.fused_image_weight, model.config.bridge_weight = 0.5, 0.0
    extra = {key: value for key, value in card.items() if key not in CARD_OWN}
    extra["blend"] = {**(card.get("blend") or {}), "note": f"heads alone, copied from {run}"}
    save_model(model, out, extra=extra, tower_state=tower_state or None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a trained run folder")
    parser.add_argument("out", type=Path, help="the folder to write")
    args = parser.parse_args(argv)
    print(heads_alone(args.run, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
