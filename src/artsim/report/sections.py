"""The pieces every part of the analysis shares: a report section, the findings, helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from artsim.eval.tasks import RETRIEVAL_METRICS

# the report shows every retrieval metric the evaluation computes, in its order
RETRIEVAL_COLUMNS = RETRIEVAL_METRICS


@dataclass
class Section:
    """One part of the report: a heading, paragraphs, and optional bullets, tables, images."""

    key: str
    title: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)  # (file stem, PNG)
    gallery: list[dict[str, Any]] = field(default_factory=list)
    # per gallery row (its query's id): the match map against its first result, PNG
    maps: dict[str, bytes] = field(default_factory=dict)


@dataclass
class Findings:
    """What the analysis concluded, for the recommendations and the tests."""

    overfitting: str = "unknown"  # large, moderate, small, inverted, unknown
    weakest: str | None = None
    still_improving: bool = False
    easy_triplets: bool = False
    baseline: str | None = None  # beaten, tie, not_frozen, not_phash
    worst_lang: str | None = None
    weak_threshold: float | None = None
    lr_reductions: int = 0
    verdict: str | None = None  # ready, ranking, not_ready


def wilson_interval(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson 95% interval of a proportion measured on ``n`` trials (sensible at 0 and 1)."""
    if n <= 0:
        return float("nan"), float("nan")
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
