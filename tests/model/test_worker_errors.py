"""A spawned embedding worker's failure comes back as text; artsim's user errors in it are
rebuilt as themselves (one line), anything else is left to propagate."""

from __future__ import annotations

from torch.multiprocessing import ProcessRaisedException

from artsim.errors import DataError, ImageError
from artsim.model.predict import worker_user_error


def raised_in_worker(last_line: str) -> ProcessRaisedException:
    text = (
        "\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call "
        'last):\n  File "x.py", line 1, in f\n    g()\n' + last_line + "\n"
    )
    return ProcessRaisedException(text, 1, 4242)


def test_an_image_error_in_a_worker_is_rebuilt_with_its_message():
    error = worker_user_error(raised_in_worker("artsim.errors.ImageError: a.png: truncated"))
    assert type(error) is ImageError and str(error) == "a.png: truncated"
    assert type(worker_user_error(raised_in_worker("artsim.errors.DataError: m: x"))) is DataError


def test_other_failures_in_a_worker_are_not_turned_into_user_errors():
    assert worker_user_error(raised_in_worker("RuntimeError: gloo: connection reset")) is None
    assert worker_user_error(raised_in_worker("artsim.errors.UserErrorish: no such class")) is None
    assert (
        worker_user_error(raised_in_worker("artsim.errors.annotations: not an error class")) is None
    )


def test_only_the_final_exception_of_a_worker_counts():
    # a user error handled in the worker, then a real failure while handling it: not a user error
    chained = raised_in_worker(
        "artsim.errors.ImageError: a.png: truncated\n\nDuring handling of the above exception, "
        'another exception occurred:\n\nTraceback (most recent call last):\n  File "y.py", '
        "line 2, in h\nRuntimeError: gloo: connection reset"
    )
    assert worker_user_error(chained) is None
