"""A query's text cost under the token budget: long texts embedded uncut and cut to the budget.

e5-small (query prefix) on 2,000 characters of English, CJK, mixed non-Latin scripts and
combining marks, and on 100 KB of English, uncut and cut to
:data:`artsim.index.query.MAX_QUERY_TOKENS` tokens (the cut's own time included). Best of two
runs, one thread.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_text_budget.py
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import types

import harness
from artsim.index.query import MAX_QUERY_TOKENS
from artsim.model.embedder import Embedder
from artsim.model.towers import create_text_tower

SECTION = "### Query text budget"


def texts() -> dict[str, str]:
    rng = random.Random(0)
    english = ("a painting of a red fox in the snow, watercolor, soft light, " * 60)[:2000]
    scripts = [(0x0400, 0x04FF), (0x0600, 0x06FF), (0x0E00, 0x0E7F)]
    return {
        "English": english,
        "CJK": "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(2000)),
        "non-Latin": "".join(chr(rng.randint(*rng.choice(scripts))) for _ in range(2000)),
        "combining marks": "a\u0301\u0302\u0303" * 500,
        "100 KB English": english * 50,
    }


def best_of(runs: int, work) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the tiny text tower (one token a character), one run."""
    return ["--text-tower", "tiny", "--runs", "1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-tower", default="e5-small-query", help="a registered text tower")
    parser.add_argument("--runs", type=int, default=2, help="timings kept: the best of these")
    args = harness.parse_args(parser, argv, quick)
    tower = create_text_tower(args.text_tower)
    embedder = types.SimpleNamespace(text_tower=tower)  # cut_to_tokens needs the tower only
    section = harness.Section(SECTION, args)
    section.line("| text | characters | tokens | uncut | cut to | cut (s) |")
    section.line("|---|---:|---:|---:|---:|---:|")
    for name, text in texts().items():
        cut, _ = Embedder.cut_to_tokens(embedder, text, MAX_QUERY_TOKENS)

        def embed_uncut(text: str = text) -> None:
            tower.encode([text])

        def cut_and_embed(text: str = text) -> None:
            tower.encode([Embedder.cut_to_tokens(embedder, text, MAX_QUERY_TOKENS)[0]])

        uncut = "-" if len(text) > 10_000 else f"{best_of(args.runs, embed_uncut):.2f} s"
        section.line(
            f"| {name} | {len(text):,} | {tower.token_count(text):,} | {uncut} | "
            f"{len(cut):,} chars, {tower.token_count(cut)} tokens | "
            f"{best_of(args.runs, cut_and_embed):.2f} |"
        )
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
