"""Service load: 50 concurrent clients send a few hundred /search queries to ``artsim serve``.

Builds an index of a synthetic corpus with an untrained model (random heads; the towers are the
real default ones unless ``--towers tiny``), starts uvicorn on a free loopback port in a thread,
runs the load, and prints p50/p99 latency and throughput as the section ``## Service load``
(``--write BENCHMARKS.md`` puts it there). Only loopback traffic; the number of requests is
bounded.

    .venv/bin/python benchmarks/bench_load.py [--towers default|tiny] [--total 300]

``tests/serve/test_load.py`` runs the same :func:`run_load` and checks behaviour, never timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import harness

SECTION = "## Service load"


@dataclass(frozen=True)
class Query:
    """One /search request: an image file and/or a text, and the original expected first."""

    image: Path | None = None
    text: str | None = None
    expect_first: str | None = None


@dataclass
class LoadResult:
    """What the load saw: per-request latency (s), statuses, and failures described."""

    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wrong_first: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        position = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[position]


def queries_from_manifest(manifest: Path) -> list[Query]:
    """Image, text and image+text queries from a synthetic manifest's originals."""
    import csv

    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    queries = []
    for row in rows:
        if row["role"] != "original":
            continue
        image = manifest.parent / row["image"]
        queries.append(Query(image=image, expect_first=row["id"]))
        queries.append(Query(text=row["text"]))
        queries.append(Query(image=image, text=row["text"]))
    return queries


async def _run(
    base_url: str, queries: Sequence[Query], concurrency: int, total: int, timeout_s: float
) -> LoadResult:
    result = LoadResult()
    images = {q.image: q.image.read_bytes() for q in queries if q.image is not None}
    todo: asyncio.Queue[Query] = asyncio.Queue()
    for number in range(total):
        todo.put_nowait(queries[number % len(queries)])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while True:
            try:
                query = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            files = {"image": ("q.png", images[query.image])} if query.image else None
            data = {"text": query.text} if query.text else {}
            started = time.perf_counter()
            try:
                answer = await client.post("/search", files=files, data=data)
            except httpx.HTTPError as error:
                result.errors.append(f"{type(error).__name__}: {error}")
                continue
            result.latencies.append(time.perf_counter() - started)
            result.statuses.append(answer.status_code)
            if answer.status_code != 200:
                result.errors.append(f"{answer.status_code}: {answer.text[:200]}")
                continue
            results = answer.json().get("results") or []
            if not results:
                result.errors.append("an answer without results")
            elif query.expect_first and results[0]["id"] != query.expect_first:
                result.wrong_first.append(f"{query.expect_first} -> {results[0]['id']}")

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:
        # one client object, ``concurrency`` requests in flight: 50 concurrent users
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - started
    return result


def run_load(
    base_url: str,
    queries: Sequence[Query],
    concurrency: int = 50,
    total: int = 300,
    timeout_s: float = 120.0,
) -> LoadResult:
    """Send ``total`` /search requests, ``concurrency`` at a time; bounded in count and time."""
    if not base_url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError("load is only ever sent to this machine's loopback addresses")
    return asyncio.run(_run(base_url, queries, concurrency, total, timeout_s))


def start_server(app) -> tuple[str, callable]:
    """uvicorn on a free loopback port in a thread; returns (base URL, stop function)."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=15)

    return f"http://127.0.0.1:{port}", stop


def machine() -> str:
    return f"{harness.cores()} cores (nproc), {harness.cpu_model()}, Python {platform.python_version()}"


def _make_run(folder: Path, towers: str) -> Path:
    import torch

    from artsim.model.heads import ArtSimModel, ModelConfig, save_model

    torch.manual_seed(0)
    if towers == "tiny":
        config = ModelConfig("tiny", "tiny", 32, 32, embed_dim=16, hidden_dim=32)
    else:
        config = ModelConfig(
            "efficientnet-lite0", "e5-small", 1280, 384, embed_dim=256, hidden_dim=512, dropout=0.1
        )
    save_model(ArtSimModel(config), folder)
    return folder


def quick(kit: harness.QuickKit) -> list[str]:
    """Options of ``--quick``: the tiny towers, few originals, clients and requests."""
    return ["--towers", "tiny", "--groups", "6", "--concurrency", "5", "--total", "30"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--towers", choices=["default", "tiny"], default="default")
    parser.add_argument("--groups", type=int, default=40, help="synthetic originals")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--total", type=int, default=300)
    args = harness.parse_args(parser, argv, quick)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from artsim.data.corpora.synthetic import make_synthetic_manifest
    from artsim.index.build import build_index
    from artsim.serve.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ARTSIM_CACHE"] = str(Path(tmp) / "cache")
        manifest = make_synthetic_manifest(Path(tmp) / "data", n_groups=args.groups)
        run = _make_run(Path(tmp) / "run", args.towers)
        build_index(run, manifest, Path(tmp) / "index").close()
        app = create_app(Path(tmp) / "index")
        base_url, stop = start_server(app)
        try:
            queries = queries_from_manifest(manifest)
            run_load(base_url, queries, concurrency=args.concurrency, total=20)  # warm-up
            result = run_load(base_url, queries, concurrency=args.concurrency, total=args.total)
        finally:
            stop()
    p50, p99 = result.percentile(50) * 1000, result.percentile(99) * 1000
    throughput = len(result.latencies) / result.wall_s if result.wall_s else 0.0
    towers = "tiny test towers" if args.towers == "tiny" else "efficientnet-lite0 + e5-small"
    body = f"""
`benchmarks/bench_load.py --towers {args.towers}`: {args.concurrency} concurrent clients,
{args.total} `POST /search` requests (a third image uploads, a third prompts, a third both) over
loopback to uvicorn (one process) serving an index of {args.groups} synthetic originals; model
with {towers} and untrained heads (latency does not depend on training).

| requests | errors | p50 | p99 | throughput |
|---:|---:|---:|---:|---:|
| {len(result.latencies)} | {len(result.errors)} | {p50:.0f} ms | {p99:.0f} ms | {throughput:.1f} req/s |

Latency here includes queueing: with {args.concurrency} clients in flight on {machine()}, each
request waits for the ones ahead of it, so p50 is close to {args.concurrency} / throughput.
"""
    section = harness.Section(SECTION, args)
    section.line(body)
    section.finish()
    if result.errors:
        print("errors:", *result.errors[:5], sep="\n  ", file=sys.stderr)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
