"""Errors that reach a user as one plain line, never as a traceback."""

from __future__ import annotations

import errno


class UserError(Exception):
    """A mistake in what the user gave us (a path, a file, an option).

    The CLI prints ``str(error)`` on one line and exits with ``exit_code``;
    the HTTP service answers with ``status_code`` and ``public`` when given (the message for a
    client: no server paths or command lines), else the message with server paths taken out.
    """

    exit_code = 2
    status_code = 400
    public: str | None = None

    def __init__(
        self,
        message: str,
        *,
        exit_code: int | None = None,
        status_code: int | None = None,
        public: str | None = None,
    ):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        if status_code is not None:
            self.status_code = status_code
        if public is not None:
            self.public = public


class DataError(UserError):
    """A data file (manifest, image, split) cannot be used."""


class ImageError(DataError):
    """One image cannot be used; the message says why (missing, corrupt, too large...)."""

    status_code = 422


class ModelMismatchError(UserError):
    """An index or cache was made with another model than the one asked to use it."""

    status_code = 409


# The disk refused a write: full, over quota, a file too large, read-only, not permitted.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for the file system",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class StorageError(UserError):
    """A write the disk refused (full, read-only, not permitted); what was committed before
    stays. ``message`` names the file (for the command line); ``public`` names none (for HTTP
    answers, which never carry server paths). HTTP status 507 when the disk is full, else 500."""

    exit_code = 4

    def __init__(self, message: str, public: str, *, full: bool):
        super().__init__(message, status_code=507 if full else 500, public=public)
        self.full = full


def storage_error(error: BaseException, advice: str = "") -> StorageError | None:
    """The :class:`StorageError` that ``error`` (or an error it was raised from or while
    handling) amounts to, or ``None`` when it is not the disk refusing a write.

    Recognised: an ``OSError`` with one of :data:`STORAGE_ERRNOS`, SQLite's "database or disk is
    full" and "readonly database", and messages of libraries that flatten the ``OSError`` into
    text (torch's and faiss's writers say "No space left on device").
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _storage_reason(current)
        if found is not None:
            reason, full, filename = found
            where = f" ({filename})" if filename else ""
            tail = f"; {advice}" if advice else ""
            action = "free some space, then try again" if full else "check the folder"
            return StorageError(
                f"cannot write: {reason}{where}; {action}{tail}",
                f"the server could not write: {reason}; nothing was changed",
                full=full,
            )
        current = current.__cause__ or current.__context__
    return None


def _storage_reason(error: BaseException) -> tuple[str, bool, str] | None:
    if isinstance(error, StorageError):
        return None
    if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
        filename = error.filename if isinstance(error.filename, str) else ""
        return STORAGE_ERRNOS[error.errno], error.errno in _FULL, filename
    text = str(error).lower()
    if "database or disk is full" in text or "no space left on device" in text:
        return STORAGE_ERRNOS[errno.ENOSPC], True, ""
    if "readonly database" in text or "read-only file system" in text:
        return STORAGE_ERRNOS[errno.EROFS], False, ""
    return None
