"""The index commands as writers: ids with commas, the write lock's message, search plans in
``index info``, ``index.json`` and search output."""

from __future__ import annotations

import csv
import json
import multiprocessing
import sys
from pathlib import Path

from artsim.cli.index import main
from artsim.cli.search import search_main
from artsim.index.catalog import ArtIndex

sys.path.insert(0, str(Path(__file__).parent))
from fault_worker import hold


def add_ids(index: Path, manifest: Path, tmp_copy, ids: list[str]) -> None:
    """Add originals of a copy of ``manifest`` under new ``ids`` (commas and all)."""
    copied = tmp_copy(manifest)
    with copied.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["role"] == "original"]
    extra = copied.parent / "extra.csv"
    with extra.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row, item_id in zip(rows, ids, strict=False):
            writer.writerow({**row, "id": item_id, "group": item_id})
    assert main(["add", "--index", str(index), "--data", str(extra)]) == 0


def held_ids(index: Path) -> set[str]:
    opened = ArtIndex.open(index, read_only=True)
    try:
        return set(opened.store.ids())
    finally:
        opened.close()


def test_remove_names_ids_with_commas(index_copy: Path, synthetic_manifest, tmp_copy, capsys):
    add_ids(index_copy, synthetic_manifest, tmp_copy, ["a,b", "a", "b", "line, two", "c"])
    # --id takes the whole id, comma included
    assert main(["remove", "--index", str(index_copy), "--id", "a,b"]) == 0
    assert {"a", "b"} <= held_ids(index_copy) and "a,b" not in held_ids(index_copy)
    # --ids-file: one id per line
    listing = index_copy.parent / "ids.txt"
    listing.write_text("line, two\n\nnot-there\n", encoding="utf-8")
    assert main(["remove", "--index", str(index_copy), "--ids-file", str(listing)]) == 0
    assert "line, two" not in held_ids(index_copy)
    assert "not-there" in capsys.readouterr().err
    # --ids keeps splitting on commas, and options combine
    assert main(["remove", "--index", str(index_copy), "--ids", "a,b", "--id", "c"]) == 0
    assert not {"a", "b", "c"} & held_ids(index_copy)
    assert main(["remove", "--index", str(index_copy)]) == 2
    assert "no id to remove" in capsys.readouterr().err
    # --id is exact, as ids are stored: an id with an added space names no original
    assert main(["remove", "--index", str(index_copy), "--id", "g000-orig "]) != 0
    assert "none of these ids" in capsys.readouterr().err
    assert "g000-orig" in held_ids(index_copy)


def test_second_writer_gets_one_line_naming_the_holder(index_copy: Path, monkeypatch, capsys):
    context = multiprocessing.get_context("forkserver")
    locked = context.Event()
    holder = context.Process(target=hold, args=(index_copy, 30, locked))
    holder.start()
    try:
        assert locked.wait(60)
        monkeypatch.setenv("ARTSIM_INDEX_LOCK_TIMEOUT", "0.2")
        capsys.readouterr()
        assert main(["remove", "--index", str(index_copy), "--id", "g000-orig"]) == 3
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and "Traceback" not in error
        assert f"pid {holder.pid}" in error and str(index_copy.resolve()) in error
        # readers are not held up by the writer
        assert main(["info", "--index", str(index_copy), "--json"]) == 0
    finally:
        holder.kill()
        holder.join()
    assert main(["remove", "--index", str(index_copy), "--id", "g000-orig"]) == 0


def test_search_plans_are_reported(index_copy: Path, synthetic_manifest, tmp_copy, capsys):
    add_ids(index_copy, synthetic_manifest, tmp_copy, ["p1"])
    mirrored = json.loads((index_copy / "index.json").read_text(encoding="utf-8"))["search"]
    assert mirrored["fused"]["kind"] == "flat" and mirrored["fused"]["recall_at_10"] == 1.0
    count = len(held_ids(index_copy))
    assert mirrored["fused"]["vectors"] == count
    capsys.readouterr()
    assert main(["info", "--index", str(index_copy), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["search"] == mirrored
    assert main(["info", "--index", str(index_copy)]) == 0
    assert f"search fused: exact (flat) ({count} vectors)" in capsys.readouterr().out
    assert search_main(["--index", str(index_copy), "--text", "a red circle", "--json"]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["search"]["exact"] is True and response["search"]["modality"] == "text"
    assert search_main(["--index", str(index_copy), "--text", "a red circle"]) == 0
    assert "search: exact over the text vectors" in capsys.readouterr().out


def test_remove_of_many_unknown_ids_says_so_in_one_short_line(index_copy: Path, capsys):
    unknown = [f"missing-{n:03d}-[bold]" for n in range(400)]
    capsys.readouterr()
    assert main(["remove", "--index", str(index_copy), "--ids", ",".join(unknown)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and len(err) < 600, err
    assert "400 id(s)" in err and "'missing-000-[bold]'" in err and "390 more" in err
    assert (
        main(["remove", "--index", str(index_copy), "--ids", ",".join([*unknown, "g000-orig"])])
        == 0
    )
    err = capsys.readouterr().err
    assert "not in the index: 400 id(s)" in err and "removed 1" in err
    assert max(len(line) for line in err.splitlines()) < 600
