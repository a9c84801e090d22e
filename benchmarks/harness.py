"""What every benchmark shares: its options, its Markdown section and its quick mode.

Every ``bench_*.py`` parses its command line through :func:`parse_args`, which adds

* ``--quick``: run on tiny synthetic inputs (:func:`quick_kit`: a synthetic corpus, a run of
  the tiny towers trained for two epochs, ...) in seconds, through the same code as a full run;
  the section then goes to a temporary file unless ``--write`` says where;
* ``--write FILE``: put the section into the Markdown file ``FILE`` (``BENCHMARKS.md``),
  replacing the text under the section's heading down to the next heading of any level, or
  appending it when the heading is not there yet;
* ``--heading TEXT``: the section's heading, for a benchmark whose tables feed several sections.

and writes what it measured through one :class:`Section`: the heading, then a line with the
command that reproduces it, the machine (CPU model, cores, GPU) and the date, then its tables::

    args = harness.parse_args(parser, argv, quick=lambda kit: ["--run", str(kit.run)])
    section = harness.Section("### Query crops", args)
    section.line("| set | recall@1 |")
    section.finish()

``benchmarks/run.py`` lists the benchmarks and runs them (``--quick``: all of them, as CI does).
"""

from __future__ import annotations

import argparse
import atexit
import csv
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT_ENV = "ARTSIM_BENCH_KIT"  # a folder the quick kit is built in once and reused from
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6}) \S")


# -- the machine ---------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """Cores this process may use (what `nproc` prints)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpus() -> list[str]:
    """The names of the GPUs this process can see: torch's view when torch is already imported
    (importing it only to ask would cost seconds), else ``nvidia-smi``'s; [] without one."""
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(k) for k in range(torch.cuda.device_count())]
        return []
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def machine() -> str:
    """``2 cores (nproc), AMD EPYC 7B13, no GPU``: what a section's timings ran on."""
    found = gpus()
    gpu = (
        f"{len(found)} GPU{'s' if len(found) > 1 else ''}: {', '.join(found)}"
        if found
        else "no GPU"
    )
    return f"{cores()} cores (nproc), {cpu_model()}, {gpu}"


# -- options -------------------------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark has (module docstring)."""
    group = parser.add_argument_group("harness")
    group.add_argument(
        "--quick",
        action="store_true",
        help="tiny synthetic inputs and tiny towers, seconds: proves the benchmark runs "
        "(its figures mean nothing); the section goes to a temporary file unless --write",
    )
    group.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help="put the section into this Markdown file (e.g. BENCHMARKS.md), replacing the text "
        "under its heading",
    )
    group.add_argument("--heading", help="the section's heading, e.g. '### Query crops'")


def parse_args(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    quick: Callable[[QuickKit], list[str]] | None = None,
) -> argparse.Namespace:
    """Parse ``argv`` (the command line's by default) with :func:`add_options` added.

    With ``--quick``, ``quick(kit)`` (the benchmark's options on :func:`quick_kit`'s inputs) goes
    before ``argv``, so options given on the command line still win. ``args.command`` is the
    command as typed (the calling script's path and ``argv``), for the section.
    """
    started = time.time()
    add_options(parser)
    given = list(sys.argv[1:] if argv is None else argv)
    full = [*quick(quick_kit()), *given] if "--quick" in given and quick is not None else given
    args = parser.parse_args(full)
    args.started = started
    script = Path(sys._getframe(1).f_globals.get("__file__") or sys.argv[0])
    args.command = command(script, given)
    if args.quick and args.write is None:
        folder = Path(tempfile.gettempdir()) / "artsim-bench-quick"
        args.write = folder / f"{script.stem}.md"
    return args


def command(script: str | Path, argv: Sequence[str]) -> str:
    """``python benchmarks/bench_x.py ARGS`` (the script's path from the repository's root)."""
    path = Path(script).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return " ".join(["python", str(shown), *map(shlex.quote, argv)])


# -- the section ---------------------------------------------------------------------------------


class Section:
    """A benchmark's Markdown section: made before the first row (it prints the heading and the
    provenance line: the command, the machine, the date the run started); every :meth:`line` is
    printed as it comes (long runs show their rows as they are measured) and kept;
    :meth:`finish` puts the section into ``args.write``. A run that fails before :meth:`finish`
    writes nothing.

    ``heading`` is the default (``--heading`` wins): ``"## Search"``, ``"### Query crops"``.
    """

    def __init__(self, heading: str, args: argparse.Namespace):
        self.heading = getattr(args, "heading", None) or heading
        if not HEADING.match(self.heading):
            raise ValueError(f"a heading starts with #s and a space: {self.heading!r}")
        self.write_to = getattr(args, "write", None)
        self.lines: list[str] = []
        self.started = getattr(args, "started", None) or time.time()
        shown = getattr(args, "command", None) or "python " + " ".join(sys.argv)
        self.provenance = (
            f"Command: `{shown}`. Machine: {machine()}. "
            f"Date: {datetime.fromtimestamp(self.started, UTC):%Y-%m-%d %H:%M} UTC."
        )
        print(f"{self.heading}\n\n{self.provenance}\n", flush=True)

    def line(self, text: str = "") -> None:
        """One line (or several, joined by newlines) of the section's body."""
        print(text, flush=True)
        self.lines.extend(text.split("\n"))

    def markdown(self) -> str:
        """The heading, the provenance line (with the seconds the run took) and the body."""
        body = "\n".join(self.lines).strip("\n")
        seconds = time.time() - self.started
        return f"{self.heading}\n\n{self.provenance} It took {seconds:.0f} s.\n\n{body}\n"

    def finish(self) -> str:
        """Write the section where ``--write`` says (nowhere without it); returns its text."""
        text = self.markdown()
        if self.write_to is not None:
            write_section(Path(self.write_to), text)
            print(f"\n(section written to {self.write_to})", flush=True)
        return text


def write_section(path: Path, section: str) -> None:
    """Put ``section`` (Markdown starting with its heading line) into the file ``path``: it
    replaces the text from the same heading to the next heading of any level (the subsections
    stay), or goes at the end (a new file holds the section alone). Lines inside fenced code
    blocks are never headings."""
    heading, _, _ = section.partition("\n")
    lines = path.read_text(encoding="utf-8").split("\n") if path.exists() else []
    start = end = None
    fenced = False
    for number, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or not HEADING.match(line):
            continue
        if start is not None:
            end = number
            break
        if line.rstrip() == heading.rstrip():
            start = number
    new = section.rstrip("\n").split("\n")
    if start is None:
        kept = _trim(lines)
        lines = [*kept, *([""] if kept else []), *new, ""]
    else:
        lines = [*lines[:start], *new, "", *lines[len(lines) if end is None else end :]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


# -- quick mode ----------------------------------------------------------------------------------


@dataclass
class QuickKit:
    """Tiny inputs shaped like the real ones, made on first use and kept in ``folder``.

    ``manifest``: 24 synthetic groups (32-px pictures, 3 stand-ins per original), their originals
    in two packages (so training chooses a blend on leave-one-source-out folds, as on the demo
    corpus). ``run``: ``artsim train`` on it with the tiny paired image tower (content + copy
    descriptor, as the default model) and the tiny text tower, two epochs. ``heldout``: the
    held-out transform family's derivatives of its originals (patterns and boxes recorded).
    """

    folder: Path

    @property
    def cache(self) -> Path:
        return self.folder / "cache"

    @property
    def manifest(self) -> Path:
        path = self.folder / "data" / "manifest.csv"
        if not path.is_file():
            _two_package_manifest(path.parent)
        return path

    @property
    def run(self) -> Path:
        return self._trained("run", "tiny+tiny-copy")

    @property
    def tuned_run(self) -> Path:
        """A run of the tiny batch-norm tower with one fine-tune epoch (a fine-tuned tower)."""
        return self._trained("tuned-run", "tiny-bn", finetune_epochs=1)

    @property
    def bridge_run(self) -> Path:
        """An untrained run with the packaged towers the ConSE bridge reads (GeM of
        efficientnet-lite0: its ImageNet classifier's input; e5-small with the query prefix) and
        random heads blended with them."""
        out = self.folder / "bridge-run"
        if not (out / "model.safetensors").is_file():
            import torch

            from artsim.model.heads import ArtSimModel, ModelConfig, save_model

            torch.manual_seed(0)
            config = ModelConfig(
                "efficientnet-lite0-gem", "e5-small-query", 1280, 384, embed_dim=16
            )
            config.image_blend = config.text_blend = 0.5
            save_model(ArtSimModel(config), out)
        return out

    @property
    def heldout(self) -> Path:
        path = self.folder / "heldout" / "manifest.csv"
        if not path.is_file():
            from artsim.data.families.heldout.derive import derive_heldout_manifest
            from artsim.data.manifest.manifest import load_manifest

            derive_heldout_manifest(load_manifest(self.manifest), path.parent, per_original=2)
        return path

    def heldout_groups(self, count: int) -> Path:
        """The :attr:`heldout` set cut to its first ``count`` groups (for the benchmarks that run
        the packaged towers, slow on a CPU even on tiny pictures)."""
        path = self.heldout.with_name(f"first-{count}-groups.csv")
        if not path.is_file():
            with self.heldout.open(encoding="utf-8", newline="") as handle:
                rows = list(csv.DictReader(handle))
            groups = sorted({row["group"] for row in rows})[:count]
            with path.open("w", encoding="utf-8", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(row for row in rows if row["group"] in groups)
        return path

    @property
    def index(self) -> Path:
        """An index of the corpus's originals with :attr:`run`'s model (not calibrated)."""
        path = self.folder / "index"
        if not (path / "index.json").is_file():
            from artsim.index.build import build_index

            shutil.rmtree(path, ignore_errors=True)
            build_index(self.run, self.manifest, path).close()
        return path

    def _trained(self, name: str, image_tower: str, **options) -> Path:
        out = self.folder / name
        if not (out / "model.safetensors").is_file():
            import artsim

            shutil.rmtree(out, ignore_errors=True)
            artsim.train(
                data=str(self.manifest),
                out=str(out),
                image_tower=image_tower,
                text_tower="tiny",
                cache_dir=str(self.cache),
                accelerator="cpu",
                progress=False,
                max_epochs=2,
                whiten_dim=8,
                **options,
            )
        return out


def quick_kit() -> QuickKit:
    """The quick kit in ``$ARTSIM_BENCH_KIT`` (``benchmarks/run.py`` sets it, so every benchmark
    of one run shares it), else in a temporary folder removed at exit. The feature cache goes
    there too: a quick run never touches ``~/.cache/artsim``."""
    folder = os.environ.get(KIT_ENV)
    if folder is None:
        folder = tempfile.mkdtemp(prefix="artsim-bench-kit-")
        atexit.register(shutil.rmtree, folder, True)
    kit = QuickKit(Path(folder))
    kit.folder.mkdir(parents=True, exist_ok=True)
    os.environ["ARTSIM_CACHE"] = str(kit.cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return kit


def _two_package_manifest(folder: Path) -> Path:
    """The synthetic corpus, its originals in two packages and, for those with an English
    caption, its Spanish translation (``text_es``, as the demo corpus's Tux Paint stamps have)."""
    from artsim.data.corpora.synthetic import COLOURS, SHAPES, make_synthetic_manifest

    manifest = make_synthetic_manifest(folder, n_groups=24)
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    groups = sorted({row["group"] for row in rows})
    english = re.compile(r"a (\w+) (\w+) on a (\w+) background")
    for row in rows:
        first_half = groups.index(row["group"]) < len(groups) // 2
        row["package"] = ("pkg-a" if first_half else "pkg-b") if row["role"] == "original" else ""
        found = english.fullmatch(row["text"]) if row["role"] == "original" else None
        row["text_es"] = ""
        if found:
            colour, shape, background = found.groups()
            row["text_es"] = (
                f"un {SHAPES[shape]} {COLOURS[colour][1]} sobre fondo {COLOURS[background][1]}"
            )
    with manifest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
