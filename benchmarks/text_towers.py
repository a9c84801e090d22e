"""Which frozen text tower reads the demo corpus's Spanish best?

For every Tux Paint stamp with both captions, the Spanish caption is a query and the English
captions of all stamps are the gallery: recall@1 and MRR of finding the same stamp's English
caption, per tower. Also English -> English prompt-to-caption retrieval on the generated prompts
as a control. Writes the table into BENCHMARKS.md (section "Text towers").

    .venv/bin/python benchmarks/text_towers.py --data data/demo/manifest.csv
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from artsim.data.manifest import load_manifest
from artsim.model.towers import create_text_tower
from markdown_section import write_section

SECTION = "## Text towers"


def ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Rank (0 = first) of the matching gallery row for each query (row i matches row i)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = q @ g.T
    return (scores > np.diag(scores)[:, None]).sum(axis=1)


def measure(tower_name: str, spanish: list[str], english: list[str]) -> dict[str, float]:
    tower = create_text_tower(tower_name)
    started = time.perf_counter()
    es = tower.encode(spanish).numpy()
    en = tower.encode(english).numpy()
    seconds = time.perf_counter() - started
    r = ranks(es, en)
    return {
        "recall@1": float((r == 0).mean()),
        "recall@5": float((r < 5).mean()),
        "mrr": float((1.0 / (r + 1)).mean()),
        "texts_per_second": (len(spanish) + len(english)) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/demo/manifest.csv")
    parser.add_argument("--towers", default="e5-small,minilm")
    parser.add_argument("--write", default="BENCHMARKS.md")
    args = parser.parse_args()
    manifest = load_manifest(args.data, check_images=False)
    pairs = [
        (item.metadata["text_es"], item.text)
        for item in manifest.originals()
        if item.metadata.get("text_es") and item.text
    ]
    spanish, english = [p[0] for p in pairs], [p[1] for p in pairs]
    lines = [
        SECTION,
        "",
        f"Spanish caption -> English caption of the same Tux Paint stamp, {len(pairs)} stamps "
        f"(gallery: all {len(pairs)} English captions), frozen towers, no training. "
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}. "
        "`benchmarks/text_towers.py`.",
        "",
        "| tower | recall@1 | recall@5 | MRR | texts/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in args.towers.split(","):
        figures = measure(name, spanish, english)
        lines.append(
            f"| {name} | {figures['recall@1']:.3f} | {figures['recall@5']:.3f} | "
            f"{figures['mrr']:.3f} | {figures['texts_per_second']:.0f} |"
        )
        print(lines[-1], flush=True)
    write_section(Path(args.write), SECTION.removeprefix("## "), "\n".join(lines[2:]))


if __name__ == "__main__":
    main()
