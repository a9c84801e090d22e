"""Search: recall@10 and per-query latency of artsim's default index against faiss Flat.

Collections of 100k and 1M unit vectors (dim 256 by default; ``--dim 1920`` is the default
model's real vector length), two kinds:

* ``clustered``: a Gaussian mixture (one centre per 100 vectors at 100k, 1000 centres at 1M,
  noise of norm about 0.8 around unit centres), the structure real embeddings have;
* ``overlapping``: a harder mixture (one centre per 100 vectors at every size, noise of norm
  1.5: a vector is closer to many foreign centres' points than in ``clustered``);
* ``random``: independent Gaussian directions, the worst case for any partitioning index.

For each, three methods, one query at a time (as the service sends them), 200 fresh queries
drawn like the collection but not in it; recall@10 against exact results:

* ``faiss IndexFlatIP``: exact, the reference latency;
* ``artsim default``: :func:`artsim.index.vector_index.choose_index`, what the embedded store
  builds for each modality: exact below 200k vectors; above it IVF, or a PQ fast-scan pass with
  exact re-ranking, whose parameters are chosen by measuring recall@10 on the collection's own
  vectors (target 0.99); exact again when neither reaches the target;
* at 100k only, the whole embedded store (``FaissStore``: SQLite id mapping included).

Each (size, kind) is measured by its own call and cached in ``benchmarks/results/search/``, so
the 1M runs can be done one at a time; a call without ``--size`` assembles the section from every
cached result (``--write BENCHMARKS.md`` puts it there).

    .venv/bin/python benchmarks/bench_search.py --size 100000 --kind clustered
    .venv/bin/python benchmarks/bench_search.py --size 1000000 --kind random
    .venv/bin/python benchmarks/bench_search.py --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

import harness

SECTION = "## Search"
RESULTS = Path(__file__).resolve().parent / "results" / "search"
DIM = 256
K = 10
NOISE = 0.8
OVERLAPPING_NOISE = 1.5


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def make_data(kind: str, n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(collection, queries) of ``kind``; the queries are fresh draws of the same law."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return (
            normalise(rng.standard_normal((n, DIM), dtype=np.float32)),
            normalise(rng.standard_normal((queries, DIM), dtype=np.float32)),
        )
    count = n // 100 if kind == "overlapping" else min(n // 100, 1000)
    noise_norm = OVERLAPPING_NOISE if kind == "overlapping" else NOISE
    centres = normalise(rng.standard_normal((count, DIM), dtype=np.float32))

    def draw(count: int) -> np.ndarray:
        out = np.empty((count, DIM), dtype=np.float32)
        for start in range(0, count, 100_000):  # in chunks: bounded temporary memory
            size = min(100_000, count - start)
            noise = rng.standard_normal((size, DIM), dtype=np.float32) * (noise_norm / np.sqrt(DIM))
            out[start : start + size] = centres[rng.integers(0, len(centres), size)] + noise
        return normalise(out)

    return draw(n), draw(queries)


def measure(search: Callable[[np.ndarray], list[int]], queries: np.ndarray, truth: np.ndarray):
    """(p50 ms, p99 ms, recall@10) of one-query-at-a-time searches."""
    latencies, recalls = [], []
    for query in queries[:5]:
        search(query)  # warm-up
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found = search(query)
        latencies.append((time.perf_counter() - started) * 1000)
        recalls.append(len(set(found) & set(expected.tolist())) / K)
    return {
        "p50": float(np.percentile(latencies, 50)),
        "p99": float(np.percentile(latencies, 99)),
        "recall": float(np.mean(recalls)),
    }


def run(n: int, kind: str, n_queries: int, exact_limit: int | None = None) -> dict:
    from artsim.index.vector_index import DEFAULT_EXACT_LIMIT, choose_index, describe_plan

    print(f"[{kind} {n:,}] generating vectors", flush=True)
    matrix, queries = make_data(kind, n, n_queries)
    result = {"n": n, "kind": kind, "queries": n_queries, "dim": DIM, "rows": []}

    print(f"[{kind} {n:,}] faiss IndexFlatIP", flush=True)
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(matrix)
    build = time.perf_counter() - started
    _, truth = flat.search(queries, K)  # exact, batched: the ground truth
    timing = measure(lambda q: flat.search(q[None], K)[1][0].tolist(), queries, truth)
    result["rows"].append({"method": "faiss IndexFlatIP (exact)", "build_s": build, **timing})
    flat.reset()

    print(f"[{kind} {n:,}] artsim default (choose_index)", flush=True)
    started = time.perf_counter()
    keys = np.arange(n, dtype=np.int64)
    index, plan = choose_index(keys, matrix, exact_limit=exact_limit or DEFAULT_EXACT_LIMIT)
    build = time.perf_counter() - started
    timing = measure(lambda q: index.search(q[None], K)[1][0].tolist(), queries, truth)
    label = f"artsim default: {describe_plan(plan)}"
    result["rows"].append({"method": label, "build_s": build, "plan": plan, **timing})
    print(f"  plan {json.dumps(plan)}", flush=True)

    if n <= 200_000:
        from artsim.index.faiss_store import FaissStore
        from artsim.index.store import OriginalRecord

        print(f"[{kind} {n:,}] embedded store (FaissStore)", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            store = FaissStore.create(Path(tmp) / "store", DIM)
            ids = [str(i) for i in range(n)]
            # the benchmark's vectors play image and fused; no captions, so no text vectors
            vectors = {"image": matrix, "fused": matrix, "text": np.zeros_like(matrix)}
            store.add(ids, vectors, [OriginalRecord(id=i, group=i) for i in ids])
            build = time.perf_counter() - started
            timing = measure(
                lambda q: [int(i) for i in store.search("fused", q, K)[0].ids], queries, truth
            )
            plan = store.search_plans()["fused"]
            result["rows"].append(
                {
                    "method": f"artsim store (FaissStore, SQLite ids): {describe_plan(plan)}",
                    "build_s": build,
                    "plan": plan,
                    **timing,
                }
            )
            store.close()
    for row in result["rows"]:
        print(
            f"  {row['method'][:70]:<70} p50 {row['p50']:7.2f} ms  p99 {row['p99']:7.2f} ms  "
            f"recall@10 {row['recall']:.3f}  build {row['build_s']:.1f} s",
            flush=True,
        )
    return result


def machine() -> str:
    return (
        f"{harness.cores()} cores (`nproc`), CPU model `{harness.cpu_model()}`, "
        f"faiss {faiss.__version__}, "
        f"numpy {np.__version__}"
    )


def stored_per_million(row: dict, dim: int) -> str:
    """What a million vectors take as a row's method stores them (float32 unless its plan says
    8 bits: :mod:`artsim.index.storage`)."""
    from artsim.index.storage import bytes_per_vector

    return f"{bytes_per_vector(row.get('plan') or {}, dim) / 1000:.1f} GB"


def write(results: list[dict]) -> str:
    lines = []
    order = lambda r: (r.get("dim", 256), r["n"], r["kind"])  # noqa: E731
    for result in sorted(results, key=order):
        flat = result["rows"][0]
        dim = result.get("dim", 256)
        for row in result["rows"]:
            lines.append(
                f"| {result['n']:,} | {dim} | {stored_per_million(row, dim)} "
                f"| {result['kind']} | {row['method']} | {row['build_s']:.1f} s "
                f"| {row['p50']:.2f} ms | {row['p99']:.2f} ms | {row['p50'] / flat['p50']:.3g}x "
                f"| {row['recall']:.3f} |"
            )
    targets = []
    for result in sorted(results, key=order):
        flat, default = result["rows"][0], result["rows"][1]
        ratio = default["p50"] / flat["p50"]
        if result["n"] <= 100_000:
            met = default["recall"] >= 0.99 and ratio <= 1.2
            goal = "recall@10 >= 0.99 at <= 1.2x Flat"
        else:
            met = default["recall"] >= 0.95 and default["p50"] <= 10
            goal = "recall@10 >= 0.95 at <= 10 ms"
        targets.append(
            f"- {result['n']:,} x {result.get('dim', 256)} {result['kind']}: recall@10 {default['recall']:.3f}, "
            f"p50 {default['p50']:.2f} ms ({ratio:.3g}x Flat); target {goal}: "
            f"{'met' if met else 'NOT met'}"
        )
    machines = sorted({r["machine"] for r in results})
    body = f"""
`benchmarks/bench_search.py` (one call per size and kind, then `--write BENCHMARKS.md`): top-{K} search over
100k and 1M unit vectors (dim 256, and the default model's real 1920 where the dim column says
so; inner product): `clustered` (a Gaussian mixture: one
centre per 100 vectors, at most 1000 centres, noise of norm {NOISE}), `overlapping` (one centre
per 100 vectors, noise of norm {OVERLAPPING_NOISE}: a harder mixture) and `random` (no structure,
the worst case); 200 fresh queries of the same law sent one at a time; recall@{K} against exact
search. "vs Flat" is the p50 latency over faiss Flat's. Machine: {"; ".join(machines)}.

| vectors | dim | stored per million | kind | method | build | p50 | p99 | vs Flat | recall@{K} |
|---:|---:|---:|---|---|---:|---:|---:|---:|---:|
{chr(10).join(lines)}

artsim's default is what the embedded store builds for each modality
(`artsim.index.vector_index.choose_index`): exact below 200k vectors. Above, an IVF index
(about 2 sqrt(n) lists) is measured first: the smallest nprobe reaching recall@10 0.99 on 300
of the collection's own vectors (against exact search, at build time), kept at once if it
probes at most 1/32 of the lists. Otherwise a PQ fast-scan first pass over every vector (4-bit
codes, dim/4 sub-quantizers, then dim/2 if those miss) with exact re-ranking of the shortest
list of candidates (20 ... 4000) reaching 0.99 is measured too, and of the plans reaching the
target the one reading the fewest bytes per query is kept; exact search if none does. Every
kind keeps every dimension of the vectors (only a neighbour can be missed; in 8 bits from 20,000
vectors, which the "stored per million" column shows) and supports removal. The "build" column of a default row includes these measurements. The chosen plan
and its measured recall are written to `index.json`, shown by `artsim index info` and in
search output. Timings on this shared 2-core machine vary by 2x or more between runs (other
jobs ran beside these, unevenly: below 200k the three methods search the same flat index, so
their differences there are noise); recall does not vary.

Against the issue's targets (artsim's default):

{chr(10).join(targets)}

`clustered` is the easy case (well-separated centres: a few IVF lists hold every true
neighbour); `overlapping` and `random` defeat IVF (the true neighbours of a query lie in many
lists), so the compressed full scan with exact re-ranking is what makes them fast there.
Recall on the fresh queries (the table) is close to the 0.99 measured at build time on the
collection's own vectors; it is the table's figure that the targets are judged on.

Not measured: Milvus. Its collections get the counterpart plans (`IVF_FLAT`, or `SCANN`:
IVF over 4-bit PQ fast-scan codes with `reorder_k` exact re-ranking, searched over every list;
from 20,000 vectors `IVF_SQ8`) chosen by the same measurement. A collection is flushed before
its index changes (Milvus searches rows of unsealed segments by brute force over float32), so
the tests, on 800 to 1,600 vectors, search the built indexes; they check the wiring, not recall,
memory or speed at 1M.
"""
    return body


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: 2,000 random vectors of 32 floats, 20 queries, the approximate
    plans measured from 1,000 vectors on, results beside the kit; the section is then assembled
    from that one result."""
    return [
        *("--size", "2000", "--kind", "random", "--queries", "20", "--dim", "32"),
        *("--exact-limit", "1000"),
        *("--results", str(kit.folder / "search"), "--section"),
    ]


def main(argv: list[str] | None = None) -> int:
    global DIM
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, help="vectors: 100000 or 1000000 in BENCHMARKS.md")
    parser.add_argument("--kind", choices=["clustered", "overlapping", "random"])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--dim", type=int, default=DIM, help="vector length (the default model's is 1920)"
    )
    parser.add_argument(
        "--exact-limit",
        type=int,
        help="collections this large or larger get approximate plans measured (default: the "
        "store's, 200000)",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="where each (size, kind) result is kept"
    )
    parser.add_argument(
        "--section",
        action="store_true",
        help="after measuring, assemble the section too (what a call without --size does)",
    )
    args = harness.parse_args(parser, argv, quick)
    if bool(args.size) != bool(args.kind):
        parser.error("--size and --kind go together")
    args.results.mkdir(parents=True, exist_ok=True)
    DIM = args.dim
    if args.size and args.kind:
        result = run(args.size, args.kind, args.queries, args.exact_limit)
        result["machine"] = machine()
        suffix = "" if DIM == 256 else f"-d{DIM}"
        path = args.results / f"{args.kind}-{args.size}{suffix}.json"
        path.write_text(json.dumps(result, indent=2))
        if not (args.section or args.write):
            return 0
    results = [json.loads(p.read_text()) for p in sorted(args.results.glob("*.json"))]
    if not results:
        parser.error(f"{args.results}: no results yet (measure with --size and --kind first)")
    section = harness.Section(SECTION, args)
    section.line(write(results))
    section.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
