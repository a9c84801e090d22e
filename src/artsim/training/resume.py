"""What ``--resume`` may continue: the interrupted run's options, or changes the user asked for.

A resumed run continues from a checkpoint made under the saved ``config.yaml``. Continuing under
other options silently (another learning rate, margin, batch shape...) makes a run that neither
configuration describes, so any difference is refused, naming each option with its old and new
value, unless the user passes ``--resume-with-changes``; then the new values are applied and the
change is written to ``RUN_DIR/changes.log`` beside the new ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from artsim import runfolder
from artsim.errors import UserError
from artsim.training.config import TrainConfig

# Where a run writes or shows its work, not what it computes.
FREE_OPTIONS = frozenset({"out", "progress", "cache_dir", "accelerator"})
# What the checkpoint was made of: no flag can continue it under other values.
FIXED_OPTIONS = frozenset(
    {
        "data",
        "seed",
        "image_tower",
        "text_tower",
        "embed_dim",
        "hidden_dim",
        "val_fraction",
        "calib_fraction",
        "split",
    }
)
CHANGES_LOG = runfolder.CHANGES_FILE


def changed_options(saved: TrainConfig, wanted: TrainConfig) -> list[tuple[str, Any, Any]]:
    """``(option, old, new)`` for every option that differs and matters to the results."""
    changes = []
    for field in dataclasses.fields(TrainConfig):
        if field.name in FREE_OPTIONS:
            continue
        old, new = getattr(saved, field.name), getattr(wanted, field.name)
        if old != new:
            changes.append((field.name, old, new))
    return changes


def _listed(changes: list[tuple[str, Any, Any]]) -> str:
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in changes)


def check_resume(
    out: Path, saved: TrainConfig, wanted: TrainConfig, with_changes: bool
) -> list[tuple[str, Any, Any]]:
    """The changes a resume would make; raises UserError (one line) unless they are allowed."""
    changes = changed_options(saved, wanted)
    fixed = [change for change in changes if change[0] in FIXED_OPTIONS]
    if fixed:
        raise UserError(
            f"{out}: --resume cannot continue this run under other {', '.join(c[0] for c in fixed)} "
            f"({_listed(fixed)}); train a new run instead"
        )
    if changes and not with_changes:
        raise UserError(
            f"{out}: --resume would change {len(changes)} option(s): {_listed(changes)}; "
            "pass --resume-with-changes to continue with the new values (recorded in "
            f"{CHANGES_LOG}), or leave them out to continue as before"
        )
    return changes


def record_changes(out: Path, changes: list[tuple[str, Any, Any]]) -> None:
    """Append one line per resume with changes to ``RUN_DIR/changes.log``."""
    if not changes:
        return
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runfolder.append_change(out, f"{stamp} resumed with changes: {_listed(changes)}")


# A stage that ended with one of these is finished; a resumed trainer would run another epoch
# after an early stop (its stop flag is not in the checkpoint), so a finished run is left alone.
FINISHED_REASONS = ("early_stopping", "max_epochs")


def finished_summary(out: Path) -> dict[str, Any] | None:
    """The summary of a run in ``out`` that ended (every stage stopped early or at its epoch
    limit, the model written), or ``None`` (no run, an interrupted one, or a NaN stop)."""
    if not all((out / name).is_file() for name in (runfolder.MODEL_WEIGHTS, runfolder.MODEL_CARD)):
        return None
    try:
        summary = runfolder.read_summary(out)
    except (UserError, ValueError, OSError):
        return None
    stages = [stage for stage in summary.get("stages") or [] if isinstance(stage, dict)]
    reasons = [stage.get("stop_reason") for stage in stages] or [summary.get("stop_reason")]
    if not all(reason in FINISHED_REASONS for reason in reasons):
        return None
    return summary


def nothing_to_resume(out: Path, saved: TrainConfig | None, wanted: TrainConfig) -> str | None:
    """For a finished run: the one line saying there is nothing to resume, or ``None`` when a
    resume may go on (not finished, or one that reached its epoch limit given new options such as
    more epochs: :func:`check_resume` judges those). Raises UserError (one line) when other
    options are asked of a run that stopped early: no resume continues it."""
    summary = finished_summary(out)
    if summary is None:
        if saved is not None:
            _refuse_changes_after_an_early_stop(out, saved, wanted)
        return None
    changes = changed_options(saved, wanted) if saved is not None else []
    stages = summary.get("stages") or [{}]
    last = stages[-1].get("stop_reason") or summary.get("stop_reason")
    ended = (
        f"stopped by {last} after {summary.get('epochs_completed')} epochs, "
        f"best epoch {summary.get('best_epoch')}"
    )
    if not changes:
        return f"nothing to resume: {out} is a finished run ({ended}); its files are unchanged"
    if last == "early_stopping":
        raise UserError(
            f"{out}: the run stopped early ({ended}): a resume cannot continue it under other "
            f"options ({_listed(changes)}); train a new run (another --out, or --overwrite)"
        )
    return None


def _refuse_changes_after_an_early_stop(out: Path, saved: TrainConfig, wanted: TrainConfig) -> None:
    """A run stopped before its summary whose every stage had ended, the last one early: its
    stages are never fitted again, so changed options would train nothing; refused in one line
    as for a finished run (a resume without changes writes the summary)."""
    changes = changed_options(saved, wanted)
    checkpoints = out / runfolder.CHECKPOINTS_DIR
    stages = [("heads", checkpoints / "heads.done")]
    if saved.finetune_epochs > 0:
        stages.append(("finetune", checkpoints / "finetune" / "finetune.done"))
    if not changes or not all(marker.is_file() for _, marker in stages):
        return
    from artsim.training.stage import read_marker  # Lightning only where a run is resumed

    name, marker = stages[-1]
    reason, _ = read_marker(marker, out, name)
    if reason == "early_stopping":
        raise UserError(
            f"{out}: the run stopped early (its {name} stage, before the summary was written): "
            f"a resume cannot continue it under other options ({_listed(changes)}); resume it "
            "without changes to finish it, or train a new run (another --out, or --overwrite)"
        )
