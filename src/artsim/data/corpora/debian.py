"""Debian packages of data fetched without installing anything: ``apt-get download`` into a
cache folder, then ``dpkg-deb -x`` there.

A second fetch reuses the unpacked cache without the network. The cache folder is ``cache_dir``,
else ``$ARTSIM_CACHE/debs``, else ``~/.cache/artsim/debs``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from artsim.errors import DataError

UNPACKED_MARKER = ".artsim-unpacked.json"

_APT_TIMEOUT_S = 600


@dataclass(frozen=True)
class PackageTree:
    """One Debian package unpacked in the cache: its files lie under ``root`` (``root/usr/...``)."""

    name: str
    version: str
    licence: str
    root: Path

    @property
    def source(self) -> str:
        """How manifests credit the package, e.g. ``tuxpaint-stamps-default 2022.06.04-1 (GPL-2)``."""
        return f"{self.name} {self.version} ({self.licence})"


def default_cache_dir() -> Path:
    """``$ARTSIM_CACHE/debs`` if ``ARTSIM_CACHE`` is set, else ``~/.cache/artsim/debs``."""
    root = os.environ.get("ARTSIM_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "artsim"
    return base / "debs"


def fetch_package(package: str, cache_dir: Path) -> PackageTree:
    """Unpack ``package`` into ``cache_dir/unpacked/<package>`` (reused if already there).

    The ``.deb`` is taken from ``cache_dir`` if one is there, else fetched with
    ``apt-get download`` (running ``apt-get update`` once if the package lists are missing).
    Nothing is installed. Raises :class:`DataError` with a one-line reason when that fails.
    """
    refuse_held_back(package)
    cache_dir = Path(cache_dir)
    unpacked = cache_dir / "unpacked" / package
    marker = unpacked / UNPACKED_MARKER
    if marker.is_file():
        version = json.loads(marker.read_text(encoding="utf-8"))["version"]
        return _package_tree(package, version, unpacked)

    cache_dir.mkdir(parents=True, exist_ok=True)
    deb = _cached_deb(package, cache_dir) or _apt_download(package, cache_dir)
    dpkg_deb = shutil.which("dpkg-deb")
    if dpkg_deb is None:
        raise DataError(
            "dpkg-deb not found: the demo corpus unpacks Debian packages; install dpkg "
            "(Debian/Ubuntu have it) or build your own manifest instead"
        )
    version = _run([dpkg_deb, "-f", str(deb), "Version"], f"reading the version of {deb.name}")
    # Unpack beside the final folder and rename, so an interrupted unpack is never mistaken for
    # a complete one.
    partial = unpacked.with_name(f".{package}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _run([dpkg_deb, "-x", str(deb), str(partial)], f"unpacking {deb.name}")
    (partial / UNPACKED_MARKER).write_text(
        json.dumps({"package": package, "version": version, "deb": deb.name}), encoding="utf-8"
    )
    shutil.rmtree(unpacked, ignore_errors=True)
    partial.rename(unpacked)
    return _package_tree(package, version, unpacked)


# The project's own held-back evaluation is made from these packages: fetching them for anything
# (training, tuning or our own evaluations) would leak it.
HELD_BACK_PACKAGES = ("wesnoth", "gcompris")


def refuse_held_back(package: str) -> None:
    """Raise :class:`DataError` for a ``wesnoth-*`` or ``gcompris-*`` package (held back)."""
    name = package.strip().lower()
    for prefix in HELD_BACK_PACKAGES:
        # Any name that starts so (wesnoth, wesnoth-1.16-data, gcompris-qt-data, ...).
        if name.startswith(prefix):
            raise DataError(
                f"{package}: the {prefix}-* packages are held back for the project's evaluation "
                "and are never fetched or used"
            )


def _package_tree(package: str, version: str, root: Path) -> PackageTree:
    copyright_path = root / "usr" / "share" / "doc" / package / "copyright"
    licence = read_copyright_licence(copyright_path) if copyright_path.is_file() else "unknown"
    return PackageTree(name=package, version=version, licence=licence, root=root)


def _cached_deb(package: str, cache_dir: Path) -> Path | None:
    debs = sorted(cache_dir.glob(f"{package}_*.deb"))
    return debs[-1] if debs else None


def _apt_download(package: str, cache_dir: Path) -> Path:
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise DataError(
            f"apt-get not found: the demo corpus needs Debian/Ubuntu apt-get and dpkg-deb to "
            f"fetch {package}; put {package}_*.deb into {cache_dir} by hand, or build your own "
            "manifest instead"
        )
    result = _apt(apt_get, "download", package, cwd=cache_dir)
    if result.returncode != 0:
        # The usual cause on a fresh container: no package lists yet ("Unable to locate package").
        update = _apt(apt_get, "update", cwd=cache_dir)
        if update.returncode != 0:
            raise DataError(
                f"apt-get download {package} failed and apt-get update failed too "
                f"({_last_line(update.stderr)}); run `sudo apt-get update` once and retry"
            )
        result = _apt(apt_get, "download", package, cwd=cache_dir)
    deb = _cached_deb(package, cache_dir)
    if result.returncode != 0 or deb is None:
        raise DataError(
            f"apt-get download {package} failed ({_last_line(result.stderr)}); check the network "
            f"and apt sources, or put {package}_*.deb into {cache_dir} by hand"
        )
    return deb


def _apt(apt_get: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [apt_get, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_APT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DataError(
            f"apt-get {' '.join(args)} took over {_APT_TIMEOUT_S} s; check the network"
        ) from None


def _run(command: Sequence[str], doing: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DataError(f"{doing} failed: {_last_line(result.stderr) or 'no message'}")
    return result.stdout.strip()


def _last_line(text: str) -> str:
    # apt prints warnings ("W: ...") before the error that matters, so report the last error.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E:")]
    return (errors or lines or [""])[-1]


def read_copyright_licence(path: Path) -> str:
    """The licence named in a Debian ``copyright`` file, e.g. ``GPL-2`` or ``public domain``.

    Machine-readable files (DEP-5) give it in the ``Files: *`` paragraph; older free-form files
    are recognised by their wording.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    paragraphs = re.split(r"\n\s*\n", text)
    for paragraph in paragraphs:
        if re.search(r"^Files:\s*\*\s*$", paragraph, flags=re.MULTILINE):
            match = re.search(r"^License:[ \t]*(\S.*)$", paragraph, flags=re.MULTILINE)
            if match:
                return match.group(1).strip()
    # A licence name on the "License:" line itself; a bare "License:" heading followed by the
    # licence's prose is free-form and read below.
    match = re.search(r"^License:[ \t]*(\S.*)$", text, flags=re.MULTILINE)
    if match:
        return match.group(1).strip()
    lowered = " ".join(text.lower().split())
    if "public domain" in lowered:
        return "public domain"
    if "gnu general public license" in lowered:
        version = re.search(r"either version (\d)", lowered) or re.search(r"version (\d)", lowered)
        later = "or (at your option) any later version" in lowered
        return f"GPL-{version.group(1)}{'+' if later else ''}" if version else "GPL"
    if "share alike" in lowered:
        return "CC-BY-SA"
    return "see its copyright file"
