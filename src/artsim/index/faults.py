"""Named fault points for crash tests: ``ARTSIM_FAULT_POINT=NAME`` kills the process there.

Writers call :func:`fault_point` at the moments a crash could hurt (after the vector files are
written, before and after the SQLite commit, ...). When the environment variable names that
point the process sends itself ``SIGKILL``, exactly like ``kill -9`` from outside: no ``finally``
block, no atexit handler runs. ``NAME@N`` fires at the N-th time the point is reached (1-based).
``NAME:enospc`` (or ``NAME@N:enospc``) raises ``OSError(ENOSPC)`` there instead, as a full disk
would: the fault-injection tests of machines where no small tmpfs can be mounted.
Unset (always, outside tests) it costs one dictionary lookup.

>>> fault_point("commit:before-sqlite-commit")  # does nothing unless the variable names it
"""

from __future__ import annotations

import errno
import os
import signal
from collections import Counter

ENV_VARIABLE = "ARTSIM_FAULT_POINT"
_reached: Counter[str] = Counter()


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``ARTSIM_FAULT_POINT`` names ``name`` (or ``name@N``);
    raise ``OSError(ENOSPC)`` if it names ``name:enospc``."""
    wanted = os.environ.get(ENV_VARIABLE)
    if not wanted:
        return
    wanted, enospc, _ = wanted.partition(":enospc")
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] < int(nth or 1):
        return
    if enospc:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"(injected at {name})")
    os.kill(os.getpid(), signal.SIGKILL)
