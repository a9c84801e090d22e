"""The pointing game: does a match map's peak on a derived picture lie where the original is?

The held-out derivation family records where it put the original's pixels (metadata ``box``:
:mod:`artsim.data.families.heldout.derive`). A map *points* right when its peak on the derived
picture A lies inside that box; on the original B, when its peak lies inside ``source_box``, the
part of B that A shows (crops). Two baselines point without looking: the centre of the picture, and
a uniformly random point (seeded). Each pattern's hit rates come with an exact sign test of the map
against each baseline over the same pairs (:func:`artsim.stats.sign_test`).

Only pairs where the box leaves some of the picture out count (its area under
:data:`MAX_BOX_SHARE` of the picture): where the original fills the picture every point hits.

On the project's held-out set the pairs are ``pointing_pairs(load_manifest(
"data/heldout/manifest.csv"))``; here, mosaics derived from the demo's originals (a mosaic always
frames its original):

>>> from artsim.data.families.heldout.derive import derive_heldout_manifest
>>> from artsim.data.manifest.manifest import load_manifest
>>> demo = load_manifest("data/demo/manifest.csv")
>>> heldout = derive_heldout_manifest(demo, tmp_path / "heldout", patterns=["mosaic"])
>>> pairs = pointing_pairs(load_manifest(heldout))
>>> table = pointing_table(play(Embedder.from_run("runs/demo"), pairs))
>>> [row["pattern"] for row in table["rows"]], table["rows"][-1]["pairs"] == len(pairs)
(['mosaic', 'all'], True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from artsim.data.families.heldout.derive import parse_box
from artsim.data.manifest.manifest import Manifest
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.model.embedder import Embedder
from artsim.model.explain import MatchMap, match_map
from artsim.stats import sign_test

MAX_BOX_SHARE = 0.9
# the patterns whose box can leave part of the picture out, and how they are grouped
POINTING_PATTERNS = (
    "collage",
    "mosaic",
    "screenshot_frame",
    "crop_pad",
    "meme_caption",
    "combo",
    "inset",
    "detail",
)


@dataclass(frozen=True)
class PointingPair:
    """A derived picture (A), its original (B), where B's pixels are in A and which part of B
    A shows (``source_box``, pixels of B)."""

    id: str
    pattern: str
    generated: str
    original: str
    box: tuple[int, int, int, int]
    source_box: tuple[int, int, int, int] | None


def pattern_group(pattern: str) -> str:
    """``combo:crop_pad+collage`` -> ``combo``; a single pattern is its own group."""
    return pattern.split(":", 1)[0]


def pointing_pairs(
    manifest: Manifest,
    patterns: Iterable[str] = POINTING_PATTERNS,
    per_pattern: int | None = None,
    seed: int = 0,
    max_box_share: float = MAX_BOX_SHARE,
) -> list[PointingPair]:
    """The derived items of ``manifest`` with a ``box`` that leaves part of the picture out,
    of the given pattern groups; at most ``per_pattern`` of each (a seeded choice)."""
    originals = {item.group: item for item in manifest.originals()}
    wanted = set(patterns)
    by_group: dict[str, list[PointingPair]] = {}
    for item in manifest.generated():
        pattern = item.metadata.get("pattern", "")
        box = parse_box(item.metadata.get("box"))
        original = originals.get(item.group)
        if pattern_group(pattern) not in wanted or box is None or original is None:
            continue
        with_size = _size(item.image)
        if with_size is None:
            continue
        width, height = with_size
        if (box[2] - box[0]) * (box[3] - box[1]) >= max_box_share * width * height:
            continue
        by_group.setdefault(pattern_group(pattern), []).append(
            PointingPair(
                id=item.id,
                pattern=pattern,
                generated=str(item.image),
                original=str(original.image),
                box=box,
                source_box=parse_box(item.metadata.get("source_box")),
            )
        )
    rng = np.random.default_rng(seed)
    chosen = []
    for group in sorted(by_group):
        pairs = by_group[group]
        if per_pattern is not None and len(pairs) > per_pattern:
            keep = sorted(rng.choice(len(pairs), per_pattern, replace=False).tolist())
            pairs = [pairs[i] for i in keep]
        chosen.extend(pairs)
    return chosen


def _size(path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return picture.size
    except OSError:
        return None


def inside(point: tuple[float, float], box: Sequence[float]) -> bool:
    """Whether pixel ``point`` (x, y) lies in ``box`` (left, top, right, bottom)."""
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


@dataclass
class PointingRecord:
    """One pair's answers: whether the map, the centre and a random point hit the box on A (and
    on B, for pairs with a partial ``source_box``), and the map's seconds."""

    pair: PointingPair
    map_hit: bool
    centre_hit: bool
    random_hit: bool
    box_share: float
    seconds: float
    b_hits: tuple[bool, bool, bool] | None = None


def point(found: MatchMap, size_a: tuple[int, int]) -> tuple[float, float]:
    x, y = found.a.peak()
    return x * size_a[0], y * size_a[1]


def play(
    embedder: Embedder,
    pairs: Sequence[PointingPair],
    *,
    explain: Callable[..., MatchMap] | None = None,
    seed: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: Callable[[int], None] | None = None,
) -> list[PointingRecord]:
    """Play the pointing game on ``pairs`` with ``explain(embedder, a, b)`` (default
    :func:`~artsim.model.explain.match_map`); the random baseline's points are seeded."""
    explain = explain or match_map
    rng = np.random.default_rng(seed)
    records = []
    for pair in pairs:
        picture_a = load_rgb(pair.generated, max_pixels)
        picture_b = load_rgb(pair.original, max_pixels)
        started = time.perf_counter()
        found = explain(embedder, picture_a, picture_b)
        seconds = time.perf_counter() - started
        width, height = picture_a.size
        box = pair.box
        centre = (width / 2, height / 2)
        random_point = (rng.uniform(0, width), rng.uniform(0, height))
        share = (box[2] - box[0]) * (box[3] - box[1]) / (width * height)
        b_hits = None
        source = pair.source_box
        b_width, b_height = picture_b.size
        if source is not None and (source[2] - source[0]) * (source[3] - source[1]) < (
            MAX_BOX_SHARE * b_width * b_height
        ):
            x, y = found.b.peak()
            b_random = (rng.uniform(0, b_width), rng.uniform(0, b_height))
            b_hits = (
                inside((x * b_width, y * b_height), source),
                inside((b_width / 2, b_height / 2), source),
                inside(b_random, source),
            )
        records.append(
            PointingRecord(
                pair=pair,
                map_hit=inside(point(found, picture_a.size), box),
                centre_hit=inside(centre, box),
                random_hit=inside(random_point, box),
                box_share=share,
                seconds=seconds,
                b_hits=b_hits,
            )
        )
        if progress is not None:
            progress(1)
    return records


def _row(name: str, hits: list[tuple[bool, bool, bool]], shares: list[float]) -> dict:
    n = len(hits)
    ours = [h[0] for h in hits]
    row = {"pattern": name, "pairs": n}
    row["map"] = sum(ours) / n if n else 0.0
    for index, baseline in ((1, "centre"), (2, "random")):
        theirs = [h[index] for h in hits]
        wins = sum(a and not b for a, b in zip(ours, theirs, strict=True))
        losses = sum(b and not a for a, b in zip(ours, theirs, strict=True))
        row[baseline] = sum(theirs) / n if n else 0.0
        row[f"{baseline}_wins"], row[f"{baseline}_losses"] = wins, losses
        row[f"p_vs_{baseline}"] = sign_test(wins, losses)
    row["box_share"] = float(np.mean(shares)) if shares else 0.0
    return row


def pointing_table(records: Sequence[PointingRecord]) -> dict:
    """Per pattern group and over all: hit rates of the map, the centre and a random point on
    A (``rows``), the same on B where A shows a part of it (``b_rows``), the sign tests, the
    boxes' mean share of the picture and the map's seconds per pair (median and 90th
    percentile)."""
    groups: dict[str, list[PointingRecord]] = {}
    for record in records:
        groups.setdefault(pattern_group(record.pair.pattern), []).append(record)
    rows, b_rows = [], []
    for name in [*sorted(groups), "all"]:
        chosen = records if name == "all" else groups[name]
        rows.append(
            _row(
                name,
                [(r.map_hit, r.centre_hit, r.random_hit) for r in chosen],
                [r.box_share for r in chosen],
            )
        )
        with_b = [r for r in chosen if r.b_hits is not None]
        if with_b:
            b_rows.append(_row(name, [r.b_hits for r in with_b], []))
    seconds = [r.seconds for r in records]
    return {
        "rows": rows,
        "b_rows": b_rows,
        "seconds_median": float(np.median(seconds)) if seconds else 0.0,
        "seconds_p90": float(np.percentile(seconds, 90)) if seconds else 0.0,
    }
