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
from artsim.train.config import TrainConfig

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
