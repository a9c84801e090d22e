"""Errors that reach a user as one plain line, never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave us (a path, a file, an option).

    The CLI prints ``str(error)`` on one line and exits with ``exit_code``;
    the HTTP service answers with ``status_code``.
    """

    exit_code = 2
    status_code = 400

    def __init__(
        self, message: str, *, exit_code: int | None = None, status_code: int | None = None
    ):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        if status_code is not None:
            self.status_code = status_code


class DataError(UserError):
    """A data file (manifest, image, split) cannot be used."""


class ImageError(DataError):
    """One image cannot be used; the message says why (missing, corrupt, too large...)."""

    status_code = 422


class ModelMismatchError(UserError):
    """An index or cache was made with another model than the one asked to use it."""

    status_code = 409
