"""benchmarks/: every benchmark is listed, writes its section through the harness, and runs in
quick mode (the slow test runs them all once, so a benchmark that rots fails CI)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the benchmarks import their harness from their folder


harness = importlib.import_module("harness")  # as the benchmarks import it
_spec = importlib.util.spec_from_file_location("benchmarks_run", BENCHMARKS / "run.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)
SCRIPTS = runner.benchmarks()


def test_the_runner_lists_every_benchmark_with_its_one_line(capsys):
    assert len(SCRIPTS) >= 15 and "search" in SCRIPTS and "train" in SCRIPTS
    assert runner.main([]) == 0
    listed = capsys.readouterr().out
    for name, script in SCRIPTS.items():
        line = runner.description(script)
        assert line and len(line) <= 100, f"{script.name}: a one-line description first"
        assert f"  {name} " in listed and line in listed


def test_an_unknown_name_is_refused_naming_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        runner.main(["--quick", "nope"])
    assert "no benchmark nope; known: calibration" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_benchmark_goes_through_the_harness(name):
    """Options (with --quick) and the section through harness; no private Markdown writer."""
    source = SCRIPTS[name].read_text(encoding="utf-8")
    assert "harness.parse_args(parser, argv, quick)" in source
    assert "harness.Section(SECTION, args)" in source and ".finish()" in source
    assert re.search(r"^SECTION = ['\"]#{2,3} \S", source, flags=re.M)
    assert "def quick(kit: harness.QuickKit)" in source
    assert "write_section(" not in source  # the harness writes every section


def test_a_section_replaces_its_own_text_and_keeps_every_other(tmp_path):
    page = tmp_path / "B.md"
    page.write_text(
        "# Benchmarks\n\nIntro.\n\n## Search\n\nold search\n\n### Query text budget\n\nkept\n\n"
        "```sh\n# a comment, not a heading\n```\n\n## Match maps\n\nmaps\n",
        encoding="utf-8",
    )
    harness.write_section(page, "## Search\n\nnew search\n")
    harness.write_section(page, "### Query text budget\n\nnew budget\n")
    harness.write_section(page, "# a comment, not a heading\n\nappended\n")
    assert page.read_text(encoding="utf-8") == (
        "# Benchmarks\n\nIntro.\n\n## Search\n\nnew search\n\n### Query text budget\n\n"
        "new budget\n\n## Match maps\n\nmaps\n\n# a comment, not a heading\n\nappended\n"
    )
    fresh = tmp_path / "new" / "section.md"
    harness.write_section(fresh, "### Alone\n\nbody\n")
    assert fresh.read_text(encoding="utf-8") == "### Alone\n\nbody\n"


def test_a_section_carries_its_command_machine_and_date(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="bench_example.py")
    parser.add_argument("--size", type=int, default=1)
    args = harness.parse_args(parser, ["--size", "3", "--write", str(tmp_path / "s.md")])
    assert args.size == 3 and not args.quick
    section = harness.Section("### Example", args)
    section.line("| a |\n|---|")
    text = section.finish()
    assert (tmp_path / "s.md").read_text(encoding="utf-8") == text
    heading, provenance, table = text.split("\n\n", 2)
    assert heading == "### Example"
    assert provenance.startswith("Command: `python tests/test_benchmarks.py --size 3 --write ")
    assert f"Machine: {harness.cores()} cores (nproc), {harness.cpu_model()}" in provenance
    assert re.search(r"Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC\. It took \d+ s\.$", provenance)
    assert table == "| a |\n|---|\n"
    assert capsys.readouterr().out.startswith("### Example\n\nCommand: ")
    with pytest.raises(ValueError, match="a heading starts with"):
        harness.Section("Example", args)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_benchmark_runs_in_quick_mode(tmp_path):
    """What CI runs once: each benchmark on the quick kit, its section written to a temp folder,
    nothing written into the repository's results."""
    results = BENCHMARKS / "results"
    before = {p: p.stat().st_mtime for p in results.rglob("*")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for name, script in SCRIPTS.items():
        section = (tmp_path / f"{name}.md").read_text(encoding="utf-8")
        heading = re.search(r"^SECTION = ['\"](.+)['\"]$", script.read_text(), flags=re.M)[1]
        assert section.startswith(f"{heading}\n\nCommand: `python benchmarks/{script.name} --quick")
        assert "Machine: " in section and " UTC. It took " in section
        assert "|---" in section or name == "text_budget", f"{name}: no table"
    assert {p: p.stat().st_mtime for p in results.rglob("*")} == before
