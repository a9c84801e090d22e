"""List the benchmarks and run them: one, several, or every one in quick mode.

    python benchmarks/run.py                          # the list, one line each
    python benchmarks/run.py search -- --size 100000 --kind clustered
    python benchmarks/run.py --quick                  # every benchmark on tiny inputs (CI)
    python benchmarks/run.py --quick calibration load # some of them

A benchmark is a ``bench_NAME.py`` beside this file; NAME is what this runner calls it. A full
run needs the benchmark's own inputs (run folders, manifests: ``python benchmarks/run.py NAME --
--help``), so only named benchmarks run at full size. ``--quick`` runs each on the quick kit
(``harness.quick_kit``: a synthetic corpus and runs of the tiny towers, built once and shared by
every benchmark of the call), in its own process with one thread (``OMP_NUM_THREADS=1`` unless
set), and writes each section to ``--out``; a failure prints the end of its log and makes the
exit status 1.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KIT_ENV = "ARTSIM_BENCH_KIT"  # as harness.KIT_ENV (not imported: listing stays instant)


def benchmarks() -> dict[str, Path]:
    """``{name: script}`` of every ``bench_*.py`` here, by name."""
    return {path.stem.removeprefix("bench_"): path for path in sorted(HERE.glob("bench_*.py"))}


def description(script: Path) -> str:
    """The first line of the script's docstring (read, not imported: no torch to list)."""
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    return docstring.strip().split("\n", 1)[0]


def listing() -> str:
    found = benchmarks()
    width = max(map(len, found))
    lines = [f"  {name:<{width}}  {description(script)}" for name, script in found.items()]
    return "\n".join(
        [
            "benchmarks (python benchmarks/run.py NAME -- OPTIONS; --quick: all on tiny inputs):",
            *lines,
        ]
    )


def run_full(scripts: dict[str, Path], options: list[str]) -> int:
    """Run named benchmarks at full size, one after another, their output as it comes."""
    status = 0
    for name, script in scripts.items():
        print(f"== {name}: python {script.relative_to(HERE.parent)} {' '.join(options)}")
        status = subprocess.run([sys.executable, str(script), *options]).returncode or status
    return status


def run_quick(scripts: dict[str, Path], options: list[str], out: Path) -> int:
    """Every script with ``--quick`` in its own process, sharing one kit; a summary table."""
    out.mkdir(parents=True, exist_ok=True)
    # one thread each (unless the caller says otherwise): on a shared machine OpenMP's spinning
    # threads (faiss, torch) turned a 0.1 s quick build into 30 s
    env = {"OMP_NUM_THREADS": "1", **os.environ, KIT_ENV: str(out / "kit")}
    rows, failed, began = [], [], time.perf_counter()
    for name, script in scripts.items():
        log = out / f"{name}.log"
        section = out / f"{name}.md"
        command = [sys.executable, str(script), "--quick", "--write", str(section), *options]
        started = time.perf_counter()
        with log.open("w", encoding="utf-8") as handle:
            code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        seconds = time.perf_counter() - started
        ok = code.returncode == 0 and section.is_file()
        rows.append((name, "ok" if ok else f"FAILED ({code.returncode})", seconds))
        print(f"{name:<20} {rows[-1][1]:<12} {seconds:6.1f} s", flush=True)
        if not ok:
            failed.append(name)
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
            print("\n".join(f"    {line}" for line in tail), flush=True)
    total = time.perf_counter() - began
    print(
        f"{len(rows) - len(failed)} of {len(rows)} ran in {total:.0f} s; sections and logs in {out}"
    )
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Options after -- go to every benchmark run.",
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (none: list them)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    parser.add_argument(
        "--quick", action="store_true", help="tiny inputs, seconds each; no names: all of them"
    )
    parser.add_argument(
        "--out", type=Path, help="quick mode: where sections, logs and the kit go (a temp folder)"
    )
    args = parser.parse_args(argv)
    found = benchmarks()
    unknown = [name for name in args.names if name not in found]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; known: {', '.join(found)}")
    if args.list or not (args.names or args.quick):
        print(listing())
        return 0
    chosen = {name: found[name] for name in (args.names or found)}
    if not args.quick:
        return run_full(chosen, options)
    out = args.out or Path(tempfile.mkdtemp(prefix="artsim-bench-quick-"))
    return run_quick(chosen, options, out)


if __name__ == "__main__":
    sys.exit(main())
