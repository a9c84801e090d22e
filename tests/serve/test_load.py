"""A bounded load on loopback: 50 concurrent clients, 300 queries, no errors (behaviour only).

Uses the very load of ``benchmarks/bench_load.py``; timing is measured there, never asserted here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from artsim.serve.app import create_app

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_load.py"

pytestmark = pytest.mark.slow


def load_module():
    # the benchmark scripts import their shared helpers from their own folder
    if str(BENCH.parent) not in sys.path:
        sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules
    sys.modules.setdefault("bench_load", module)
    spec.loader.exec_module(module)
    return module


def test_fifty_concurrent_clients_get_correct_answers(built_index, synthetic_manifest, live_server):
    bench = load_module()
    base_url = live_server(create_app(built_index))
    queries = bench.queries_from_manifest(synthetic_manifest)
    result = bench.run_load(base_url, queries, concurrency=50, total=300, timeout_s=120)
    assert result.errors == []
    assert result.statuses == [200] * 300
    # every image query of an original found that original first, even under load
    assert result.wrong_first == []
