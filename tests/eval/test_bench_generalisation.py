"""benchmarks/bench_generalisation.py: rows for frozen, hash and each run; evaluations reused."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_generalisation.py"
sys.path.insert(0, str(BENCH.parent))  # the benchmarks import their harness from their folder
_spec = importlib.util.spec_from_file_location("bench_generalisation", BENCH)
bench_generalisation = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_generalisation)


def test_rows_and_reuse(eval_run, run_copy, synthetic_manifest, capsys, monkeypatch) -> None:
    run = run_copy(eval_run)
    argv = ["--run", f"tiny={run}", "--set", f"Synthetic set={synthetic_manifest}"]
    assert bench_generalisation.main(argv) == 0
    lines = table_lines(capsys.readouterr().out)
    assert len(lines) == 2 + 3  # header, rule, frozen, hash, the run
    frozen, phash, trained = lines[2:]
    assert "| frozen towers |" in frozen and "| perceptual hash |" in phash
    assert trained.startswith("| Synthetic set (") and "| tiny |" in trained
    assert (run / "eval" / "gen-synthetic-set.json").is_file()

    def no_evaluation(*args, **kwargs):
        raise AssertionError("a saved evaluation of the same model and data is reused")

    monkeypatch.setattr(bench_generalisation, "evaluate_run", no_evaluation)
    assert bench_generalisation.main(argv) == 0
    assert table_lines(capsys.readouterr().out)[2:] == [frozen, phash, trained]


def table_lines(out: str) -> list[str]:
    """The Markdown table's lines of the section (the heading and the command line left out)."""
    return [line for line in out.splitlines() if line.startswith("|")]


def test_bad_pair_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        bench_generalisation.main(["--run", "no-equals-sign", "--set", "a=b"])
    assert "expected LABEL=PATH" in capsys.readouterr().err


def test_query_hits_give_the_evaluations_recall_at_1(eval_run, run_copy, synthetic_manifest):
    import json

    run = run_copy(eval_run)
    argv = ["--run", f"tiny={run}", "--set", f"Synthetic set={synthetic_manifest}"]
    assert bench_generalisation.main(argv) == 0
    result = json.loads((run / "eval" / "gen-synthetic-set.json").read_text())
    hits = bench_generalisation.query_hits(run, "Synthetic set")
    for task, per_query in hits.items():
        mean = sum(per_query.values()) / len(per_query)
        assert mean == pytest.approx(result["tasks"][task]["recall@1"], abs=1e-9)


def _top5(run: Path, tops: dict[str, list[tuple[float, bool]]]) -> None:
    import json

    (run / "eval").mkdir(parents=True)
    queries = [
        {"query": q, "top": [{"id": f"g{k}", "score": s, "hit": h} for k, (s, h) in enumerate(t)]}
        for q, t in tops.items()
    ]
    (run / "eval" / "gen-s.top5.json").write_text(json.dumps({"tasks": {"image": queries}}))


def test_versus_counts_queries_won_and_lost_with_ties_shared(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _top5(a, {"q1": [(0.9, True), (0.1, False)], "q2": [(0.5, True), (0.5, False)],
              "q3": [(0.9, False), (0.2, True)], "q4": [(0.3, False)]})  # fmt: skip
    _top5(b, {"q1": [(0.9, False), (0.1, True)], "q2": [(0.7, True), (0.5, False)],
              "q3": [(0.9, True)], "q4": [(0.3, False)]})  # fmt: skip
    hits = bench_generalisation.query_hits(a, "s")["image"]
    assert hits == {"q1": 1.0, "q2": 0.5, "q3": 0.0, "q4": 0.0}
    row = bench_generalisation.versus_row("s", "a", {"image": hits}, {"image": {
        "q1": 0.0, "q2": 1.0, "q3": 1.0, "q4": 0.0}})  # fmt: skip
    assert row.startswith("| s | a | +1/-2 (p 1) |")


HEADS = Path(__file__).resolve().parents[2] / "tools" / "heads_alone.py"
_heads_spec = importlib.util.spec_from_file_location("heads_alone", HEADS)
heads_alone = importlib.util.module_from_spec(_heads_spec)
_heads_spec.loader.exec_module(heads_alone)


def test_heads_alone_copy_embeds_with_the_trained_heads_only(eval_run, run_copy, tmp_path):
    import torch

    from artsim.model.heads import load_model, save_model

    run = run_copy(eval_run)
    model, card, _ = load_model(run)
    # a blended model (trained part 0.25) with a whitening, as training writes one
    model.config.image_blend, model.config.text_blend, model.config.fused_image_weight = (
        0.25,
        0.1,
        0.2,
    )
    save_model(model, run, extra={k: v for k, v in card.items() if k not in heads_alone.CARD_OWN})
    out = heads_alone.heads_alone(run, tmp_path / "heads")
    alone, alone_card, _ = load_model(out)
    blended, _, _ = load_model(run)
    assert (alone.config.image_blend, alone.config.text_blend) == (1.0, 1.0)
    assert alone.config.fused_image_weight == 0.5 and alone.config.bridge_weight == 0.0
    assert "heads alone" in alone_card["blend"]["note"]
    features = torch.randn(3, alone.config.image_feature_dim)
    with torch.no_grad():
        assert torch.allclose(alone.infer_image(features), blended.embed_image(features))
        assert not torch.allclose(
            blended.infer_image(features)[:, : alone.config.embed_dim], alone.infer_image(features)
        )
    for name in heads_alone.COPIED:
        assert (out / name).is_file() == (run / name).is_file()
