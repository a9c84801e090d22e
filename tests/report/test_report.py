"""The training report: both languages, self-contained HTML, analysis chosen from the numbers."""

from __future__ import annotations

import copy
import json
import re

import pytest

from artsim.cli.report import main
from artsim.eval.result import EvalResult
from artsim.report.analysis import analyse_run
from artsim.report.reading import Evaluation, load_run
from artsim.report.report import build_report
from artsim.report.text import TEMPLATES


def test_report_writes_both_languages(evaluated_run, run_copy):
    run = run_copy(evaluated_run)
    english = build_report(run, lang="en")
    spanish = build_report(run, lang="es")
    assert english == {"html": run / "report.html", "md": run / "report.md"}
    assert spanish == {"html": run / "report.es.html", "md": run / "report.es.md"}

    page = english["html"].read_text(encoding="utf-8")
    # self-contained: plots and thumbnails embedded, nothing fetched
    assert page.count("data:image/png;base64,") >= 4
    assert 'class="thumb"' in page and 'class="gallery"' in page
    assert not re.search(r'src="(?!data:)', page)
    assert "over-fitting" in page and "Recommendations" in page
    markdown = english["md"].read_text(encoding="utf-8")
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown):
        assert (run / image).is_file()


def test_spanish_report_is_spanish(evaluated_run, run_copy):
    run = run_copy(evaluated_run)
    paths = build_report(run, lang="es")
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert "sobreajuste" in text and "Recomendaciones" in text and "Conclusión" in text
        for key in TEMPLATES["en"]:
            if "_" in key:  # template keys never leak into the page
                assert key not in text, key
        for template in TEMPLATES["en"].values():
            # no English sentence: the fixed start of each English template is absent
            start = template.split("{")[0].strip()
            if len(start) >= 20:
                assert start not in text, start
    markdown = paths["md"].read_text(encoding="utf-8")
    assert " the " not in markdown and " and " not in markdown


def fake_evaluation(r1: float, r5: float, hard: float, recall_at_1pct: float) -> dict:
    """An evaluation file with only what the analysis reads (as an older version wrote it)."""
    tasks = {
        task: {
            "recall@1": r1,
            "recall@5": r5,
            "recall@10": 1.0,
            "mrr": (r1 + r5) / 2,
            "map": (r1 + r5) / 2,
            "triplet_acc": 0.99,
            "triplet_acc_hard": hard,
            "n_queries": 60,
        }
        for task in ("image", "text", "i2t", "t2i", "fused")
    }
    at = {"threshold": 0.5, "precision": 0.9, "recall": recall_at_1pct, "fpr": 0.01}
    verification = {
        task: {"roc_auc": 0.9, "at_fpr_0.01": dict(at), "at_fpr_0.05": dict(at)} for task in tasks
    }
    return {
        "model_id": "0123456789abcdef",
        "tasks": tasks,
        "verification": verification,
        "by_lang": {"en": copy.deepcopy(tasks), "es": copy.deepcopy(tasks)},
        "baselines": {
            "phash": {"image": {**tasks["image"], "recall@1": 0.2}},
            "frozen": {"image": {**tasks["image"], "recall@1": 0.3}, "text": tasks["text"]},
        },
        "counts": {"queries": 60, "gallery": 20, "skipped": {}, "problems": []},
    }


@pytest.fixture
def make_run(tmp_path, report_manifest, write_run):
    def make(name: str, **kwargs):
        return load_run(write_run(tmp_path / name, report_manifest, with_model=False, **kwargs))

    return make


def test_large_gap_reads_as_overfitting_and_recommends_regularisation(make_run, make_rows):
    run = make_run("overfit", rows=make_rows(train_final=0.01, val_final=0.12))
    evaluation = Evaluation(EvalResult.from_dict(fake_evaluation(0.95, 1.0, 0.95, 0.9)))
    sections, findings = analyse_run(run, evaluation, "en")
    assert findings.overfitting == "large"
    text = " ".join(p for s in sections for p in s.paragraphs + s.bullets)
    assert "clear sign of over-fitting" in text and "data augmentation" in text
    assert findings.weakest == "text" and "Text is the weakest modality" in text
    assert findings.verdict == "ready" and findings.baseline == "beaten"


def test_small_gap_and_easy_triplets(make_run, make_rows):
    run = make_run("easy", rows=make_rows(train_final=0.05, val_final=0.052))
    evaluation = Evaluation(EvalResult.from_dict(fake_evaluation(0.4, 0.7, 0.45, 0.2)))
    sections, findings = analyse_run(run, evaluation, "en")
    text = " ".join(p for s in sections for p in s.paragraphs + s.bullets)
    assert findings.overfitting == "small" and "no sign of over-fitting" in text
    assert findings.easy_triplets and "random negative is an easy figure" in text
    assert "miner: hard" in text and "hard_negatives: artist" in text
    assert findings.weak_threshold == 0.2 and findings.verdict == "not_ready"
    spanish, _ = analyse_run(run, evaluation, "es")
    assert "no hay indicios de sobreajuste" in " ".join(p for s in spanish for p in s.paragraphs)


def test_stop_reasons_are_explained(make_run):
    improving = make_run("limit", stop_reason="max_epochs")
    sections, findings = analyse_run(improving, None, "en")
    text = " ".join(p for s in sections for p in s.paragraphs + s.bullets)
    assert findings.still_improving and "epoch limit" in text and "Train for more epochs" in text
    assert "reduced 2 times" in text and findings.verdict is None
    broken = make_run("nan", stop_reason="nan_loss")
    sections, _ = analyse_run(broken, None, "es")
    text = " ".join(p for s in sections for p in s.paragraphs + s.bullets)
    assert "NaN" in text and "Bajar la tasa de aprendizaje" in text


def test_report_reads_files_only_and_says_how_to_evaluate(
    tmp_path, report_manifest, write_run, capsys
):
    run = write_run(tmp_path / "fresh", report_manifest)
    assert main([str(run), "--out", str(tmp_path / "out")]) == 0
    assert not (run / "eval").exists() and not (run / "calibration.json").exists()
    out = capsys.readouterr().out
    assert out.count("no evaluation in the report") == 1
    assert f"artsim evaluate --run {run} --split val" in out.replace("\n", "")
    text = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "Retrieval figures are not available" in text and "eval/val.json is missing" in text
    assert (tmp_path / "out" / "report_files" / "curves.png").is_file()


def test_report_without_model_still_reports_training(tmp_path, report_manifest, write_run):
    run = write_run(tmp_path / "nomodel", report_manifest, with_model=False)
    paths = build_report(run, lang="en")
    text = paths["md"].read_text(encoding="utf-8")
    assert "Retrieval figures are not available" in text and "Why training stopped" in text


def test_report_command(evaluated_run, run_copy, tmp_path, capsys):
    run = run_copy(evaluated_run)
    assert main([str(run), "--lang", "es", "--out", str(tmp_path / "es")]) == 0
    assert (tmp_path / "es" / "report.es.html").is_file()
    assert main([str(run), "--lang", "fr"]) == 2
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "unknown language 'fr'" in err and "run folder not found" in err
    assert "Traceback" not in err


def test_stale_evaluation_is_not_used(evaluated_run, run_copy):
    run = run_copy(evaluated_run)
    stale = json.loads((run / "eval" / "val.json").read_text())
    stale["model_id"] = "another-model"
    (run / "eval" / "val.json").write_text(json.dumps(stale))
    text = build_report(run, lang="en")["md"].read_text(encoding="utf-8")
    assert (
        "was made with model another-model" in text
        and "Retrieval figures are not available" in text
    )
    assert json.loads((run / "eval" / "val.json").read_text())["model_id"] == "another-model"


def test_report_shows_open_set_figures_and_calibration_in_both_languages(evaluated_run, run_copy):
    """The verdict part: µAP and recall at precision per scorer, the pairs they come from, the
    collection calibration of the run's index with its confusion counts, EN and ES."""
    from artsim.report.verdicts import verdicts_part

    run = run_copy(evaluated_run)
    result = json.loads((run / "eval" / "val.json").read_text())
    (run / "index").mkdir()
    calibration = {
        "model_id": result["model_id"],
        "rate": 0.01,
        "tasks": {},
        "copy": None,
        "about": {
            "on": {"match_queries": 40, "distractor_queries": 40, "seed": 0},
            "measured": {
                "fused": {
                    "0.01": {
                        "threshold": 0.71,
                        "recall": 0.55,
                        "false_rate": 0.0,
                        "false_rate_interval": [0.0, 0.088],
                    }
                }
            },
            "confusion": {
                "task": "fused",
                "counts": {"original not indexed": {"derived": 0, "unrelated": 39, "related": 1}},
            },
        },
    }
    (run / "index" / "index.json").write_text(json.dumps({"calibration": calibration}))
    english = verdicts_part(run, "en")
    spanish = verdicts_part(run, "es")
    micro_ap = result["open_set"]["fused"]["micro_ap"]
    first_table = english["tables"][0]
    assert first_table[0][2] == "µAP"
    fused_row = next(row for row in first_table[1] if row[1] == "trained, fused")
    assert fused_row[2] == f"{micro_ap:.3g}"
    assert any(row[1] == "perceptual hash, image" for row in first_table[1])
    text = " ".join(english["paragraphs"])
    assert "40 derivatives of indexed originals" in text and "cross-fitted" in text
    assert "pares de la parte val" in " ".join(spanish["paragraphs"])
    measured = english["tables"][-2]
    assert measured[1][0][:3] == ["fused", "0.01", "0.71"]
    confusion = english["tables"][-1]
    assert confusion[0][1:] == ["copy", "derived", "related", "unrelated"]
    assert confusion[1][0] == ["original not indexed", "0", "0", "1", "39"]
    assert spanish["title"].startswith("Veredictos") and "derivada" in spanish["tables"][-1][0]
    paths = build_report(run, lang="es")
    assert "Veredictos" in paths["md"].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("lang", "sentence"),
    [
        ("en", "The copy descriptor alone (SSCD, raw cosine) reaches recall@1 0.87 "),
        (
            "es",
            "El descriptor de copia solo (SSCD, coseno sin procesar) alcanza un recall@1 de 0.87 ",
        ),
    ],
)
def test_a_model_with_a_copy_descriptor_is_set_beside_that_descriptor_alone(
    make_run, make_rows, lang, sentence
):
    evaluation = fake_evaluation(0.95, 1.0, 0.95, 0.9)
    evaluation["baselines"]["copy"] = {"image": {**evaluation["tasks"]["image"], "recall@1": 0.87}}
    run = make_run(f"copy-{lang}", rows=make_rows())
    result = EvalResult.from_dict(evaluation)
    sections, _ = analyse_run(run, Evaluation(result), lang)
    text = " ".join(p for s in sections for p in s.paragraphs + s.bullets)
    assert sentence in text.replace("0,87", "0.87")
    from artsim.report.eval_sections import _retrieval_rows

    rows = _retrieval_rows(result, lang)
    assert any("SSCD" in row[0] and row[1].replace(",", ".") == "0.87" for row in rows)


def test_the_gallery_shows_where_each_query_matches_its_first_result(evaluated_run, run_copy):
    from artsim.report.reading import load_evaluation
    from artsim.report.sections import Section

    run = run_copy(evaluated_run)
    evaluation = load_evaluation(load_run(run), "val")
    sections, _ = analyse_run(load_run(run), evaluation, "en")
    gallery = next(
        section for section in sections if isinstance(section, Section) and section.gallery
    )
    rows = len(gallery.gallery)
    assert rows > 0

    paths = build_report(run, lang="en")
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count('<img class="map"') == rows
    assert page.count("where the query (left) matches its first result") == rows
    markdown = paths["md"].read_text(encoding="utf-8")
    maps = re.findall(r"!\[[^]]*\]\(([^)]*map-\d\d\.png)\)", markdown)
    assert len(maps) == rows and all((run / image).is_file() for image in maps)
    spanish = build_report(run, lang="es")["html"].read_text(encoding="utf-8")
    assert spanish.count("dónde coincide la consulta") == rows

    plain = build_report(run, lang="en", maps=False)["html"].read_text(encoding="utf-8")
    assert '<img class="map"' not in plain
