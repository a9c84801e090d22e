"""Run folders are never clobbered: a guard before training and a lock while it trains.

* :func:`check_out_folder`: ``train`` refuses a non-empty ``--out`` unless told what to do with
  it: ``--resume`` (continue the run in it) or ``--overwrite`` (replace the run's files; other
  files in the folder are left alone).
* :class:`RunLock`: an exclusive ``fcntl.flock`` on ``RUN_DIR/.artsim.lock`` held for the whole
  run; a second ``train`` on the same folder fails at once with one line. The lock goes with the
  process (a crash or ``kill -9`` releases it); the empty lock file stays and is ignored.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

from artsim import runfolder
from artsim.errors import UserError

LOCK_FILE = ".artsim.lock"
# What a training run writes in its folder (and evaluation adds to it): --overwrite removes
# exactly these, so a user's own files in the folder survive.
RUN_FILES = (
    runfolder.CONFIG_FILE,
    runfolder.DATA_FILE,
    runfolder.CHANGES_FILE,
    runfolder.SPLIT_FILE,
    runfolder.PROBLEMS_FILE,
    runfolder.METRICS_FILE,
    runfolder.SUMMARY_FILE,
    runfolder.MODEL_WEIGHTS,
    runfolder.MODEL_CARD,
    runfolder.CALIBRATION_FILE,
    runfolder.CHECKPOINTS_DIR,
    runfolder.EVAL_DIR,
)


class RunFolderBusy(UserError):
    """Another process is training into the same run folder."""

    exit_code = 3


def _entries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name != LOCK_FILE)


# What a run writes before its first epoch: a folder holding these alone never trained (its
# command failed before: a missing image, a tower that cannot load), and a new run may take it.
NOT_STARTED_FILES = frozenset(
    {runfolder.CONFIG_FILE, runfolder.SPLIT_FILE, runfolder.PROBLEMS_FILE, runfolder.DATA_FILE}
)


def never_started(out: Path) -> bool:
    """Whether ``out`` holds run files of a run that never trained (and nothing else)."""
    try:
        entries = _entries(out)
    except OSError:
        return False
    return bool(entries) and set(entries) <= NOT_STARTED_FILES


def _describe(folder: Path, entries: list[str]) -> str:
    if runfolder.SUMMARY_FILE in entries:
        return "a finished run"
    if runfolder.CONFIG_FILE in entries or runfolder.CHECKPOINTS_DIR in entries:
        return "an unfinished run"
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return f"files that are not a run ({shown})"


def check_out_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Raise UserError unless training may write into ``out`` as asked (nothing is changed)."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other: choose one")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file, not a folder")
    if not out.is_dir():
        return
    try:
        entries = _entries(out)
    except OSError as error:
        raise UserError(f"--out {out}: cannot read the folder ({error.strerror})") from None
    if not entries or overwrite or set(entries) <= NOT_STARTED_FILES:
        return
    what = _describe(out, entries)
    if resume:
        if what.startswith("files"):
            raise UserError(
                f"--out {out} holds {what}: nothing to resume there "
                "(choose another --out, or pass --overwrite instead of --resume)"
            )
        return
    raise UserError(
        f"--out {out} is not empty ({what}): pass --resume to continue it, --overwrite to "
        "replace its run files, or choose another --out"
    )


def remove_run_files(out: Path) -> list[str]:
    """Remove what an earlier run left in ``out`` (:data:`RUN_FILES` only); returns the names."""
    removed = []
    for name in RUN_FILES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed


class RunLock:
    """``with RunLock(out):`` holds an exclusive lock on the run folder, or raises
    :class:`RunFolderBusy` at once when another process holds it."""

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_FILE
        self._handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            who = f" (process {holder})" if holder.isdigit() else ""
            raise RunFolderBusy(
                f"--out {self.path.parent}: another artsim train is writing this run folder"
                f"{who}; wait for it to end or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
