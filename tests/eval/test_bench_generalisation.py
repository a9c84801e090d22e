"""benchmarks/bench_generalisation.py: rows for frozen, hash and each run; evaluations reused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_generalisation.py"
_spec = importlib.util.spec_from_file_location("bench_generalisation", BENCH)
bench_generalisation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_generalisation)


def test_rows_and_reuse(eval_run, run_copy, synthetic_manifest, capsys, monkeypatch) -> None:
    run = run_copy(eval_run)
    argv = ["--run", f"tiny={run}", "--set", f"Synthetic set={synthetic_manifest}"]
    assert bench_generalisation.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + 3  # header, rule, frozen, hash, the run
    frozen, phash, trained = lines[2:]
    assert "| frozen towers |" in frozen and "| perceptual hash |" in phash
    assert trained.startswith("| Synthetic set (") and "| tiny |" in trained
    assert (run / "eval" / "gen-synthetic-set.json").is_file()

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a saved evaluation of the same model and data is reused")

    monkeypatch.setattr(bench_generalisation, "evaluate_run", no_evaluation)
    assert bench_generalisation.main(argv) == 0
    assert capsys.readouterr().out.strip().splitlines()[2:] == [frozen, phash, trained]


def test_bad_pair_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_generalisation.main(["--run", "no-equals-sign", "--set", "a=b"])
    assert "expected LABEL=PATH" in capsys.readouterr().err
