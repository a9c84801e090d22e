"""One writer at a time: an exclusive ``flock`` on ``write.lock`` in the index folder.

Every change of an index (a store commit, replacing an index with ``build --force``) runs while
holding this lock, so two processes (two ``artsim index add``, the CLI beside a ``serve
--token``) never write at once. The lock is taken per change, not for a process's life: a
server started with a token does not keep the CLI out. A second writer waits up to
``timeout`` seconds (``ARTSIM_INDEX_LOCK_TIMEOUT``, default 60) and then fails with one line
naming the index and the process that holds it.

The lock is advisory and local: it works between processes of one machine on a local file
system (NFS and other network file systems may not honour ``flock``).

>>> from pathlib import Path
>>> with index_write_lock(Path("runs/demo/index")):
...     pass  # write files, commit
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from artsim.errors import UserError

LOCK_FILE = "write.lock"
DEFAULT_TIMEOUT = 60.0
_POLL_SECONDS = 0.05

# flock is per open file: a second flock from this process on another descriptor would wait
# for ourselves. Threads of one process are serialised here first, and a thread that already
# holds the folder's lock re-enters it.
_held: dict[Path, tuple[int, int]] = {}  # folder -> (descriptor, depth)
_owner: dict[Path, int] = {}  # folder -> thread id
_process_lock = threading.Condition()


class IndexLockTimeout(UserError):
    """Another process kept the index's write lock longer than we were willing to wait."""

    exit_code = 3
    status_code = 503


def lock_timeout() -> float:
    """Seconds a writer waits for the lock: ``ARTSIM_INDEX_LOCK_TIMEOUT`` or 60."""
    raw = os.environ.get("ARTSIM_INDEX_LOCK_TIMEOUT", "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


def _holder(path: Path, with_command: bool = True) -> str:
    """Who holds the lock, as its file says (pid, command, since when), or ``unknown``;
    ``with_command=False`` leaves the command line out (it names server paths)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        since = time.strftime("%H:%M:%S", time.localtime(float(data["since"])))
        command = f" ({data['command']})" if with_command else ""
        return f"pid {data['pid']}{command} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown holder"


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (on_disk.st_dev, on_disk.st_ino) == (opened.st_dev, opened.st_ino)


@contextmanager
def index_write_lock(folder: str | Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive write lock of the index in ``folder`` (waits up to ``timeout`` s).

    Raises :class:`IndexLockTimeout` (one line naming the folder and the holder) when another
    process keeps it longer, and :class:`UserError` when the index was replaced (``build
    --force``) or removed while we waited.
    """
    folder = Path(folder).resolve()
    timeout = lock_timeout() if timeout is None else timeout
    me = threading.get_ident()
    deadline = time.monotonic() + timeout
    with _process_lock:
        while folder in _owner and _owner[folder] != me:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise IndexLockTimeout(
                    f"{folder}: another writer in this process holds the index; "
                    f"waited {timeout:g} s"
                )
            _process_lock.wait(remaining)
        if folder in _held:
            descriptor, depth = _held[folder]
            _held[folder] = (descriptor, depth + 1)
            reentered = True
        else:
            _owner[folder] = me
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _process_lock:
                descriptor, depth = _held[folder]
                _held[folder] = (descriptor, depth - 1)
        return
    try:
        descriptor = _acquire(folder, deadline, timeout)
    except BaseException:
        with _process_lock:
            _owner.pop(folder, None)
            _process_lock.notify_all()
        raise
    with _process_lock:
        _held[folder] = (descriptor, 1)
    try:
        yield
    finally:
        with _process_lock:
            _held.pop(folder, None)
            _owner.pop(folder, None)
            _process_lock.notify_all()
        os.close(descriptor)  # closing releases the flock


def _acquire(folder: Path, deadline: float, timeout: float) -> int:
    path = folder / LOCK_FILE
    if not folder.is_dir():
        raise UserError(f"index not found: {folder}")
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            raise UserError(f"{folder}: the index was removed while waiting to write") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            if time.monotonic() >= deadline:
                raise IndexLockTimeout(
                    f"{folder}: another writer is changing this index ({_holder(path)}); "
                    f"waited {timeout:g} s (set ARTSIM_INDEX_LOCK_TIMEOUT to wait longer)",
                    public=f"another writer is changing the index ({_holder(path, False)}); "
                    f"waited {timeout:g} s: try again shortly",
                ) from None
            time.sleep(_POLL_SECONDS)
            continue
        if not _same_file(descriptor, path):
            # the folder was replaced or removed while we waited: this lock guards nothing
            os.close(descriptor)
            continue
        note = {"pid": os.getpid(), "command": " ".join(sys.argv[:3]), "since": time.time()}
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(note).encode(), 0)
        return descriptor
