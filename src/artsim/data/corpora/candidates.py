"""What a Debian package offers a corpus: one image found in it, with what the package says
about it (:mod:`artsim.data.corpora.demo` chooses among them, :mod:`artsim.data.corpora.sources`
finds them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Candidate:
    """One image found in a package, with what the package says about it."""

    id: str
    image: Path
    package: str
    category: str
    title: str
    text: str
    lang: str
    artist: str
    source: str
    # Images that differ only by a number or a mirror suffix share a key; one of them is kept,
    # because near-copies in different groups would make "which original?" unanswerable.
    variant_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)
