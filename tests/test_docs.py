"""The docs hold: every training option is in the configuration reference, every link resolves.

Fast on purpose: the options are read from ``config.py``'s syntax tree (importing it loads
torch); ``docs/gen_configuration.py --check`` compares the whole generated table.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONFIG = ROOT / "src" / "artsim" / "training" / "config.py"
REFERENCE = DOCS / "configuration.md"


def train_config_fields() -> list[str]:
    """The field names of ``TrainConfig``, in order, from the source."""
    tree = ast.parse(CONFIG.read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig")
    return [
        node.target.id
        for node in cls.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    ]


def documented_options() -> list[str]:
    """The options of the reference's table: the first cell of each row, in order."""
    text = REFERENCE.read_text(encoding="utf-8")
    return re.findall(r"^\| `([a-z_0-9]+)` \|", text, flags=re.M)


def test_every_train_config_field_is_in_the_configuration_reference():
    fields = train_config_fields()
    assert len(fields) > 30  # the parse found the dataclass
    documented = documented_options()
    missing = [name for name in fields if name not in documented]
    assert not missing, (
        f"{REFERENCE.name} lacks {missing}: run PYTHONPATH=src python docs/gen_configuration.py "
        "--write"
    )
    stale = [name for name in documented if name not in fields]
    assert not stale, f"{REFERENCE.name} documents options TrainConfig no longer has: {stale}"


# --- links -------------------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def pages() -> list[Path]:
    found = [
        ROOT / "README.md",
        ROOT / "BENCHMARKS.md",
        *sorted(DOCS.glob("*.md")),
        *sorted(DOCS.glob("decisions/*.md")),
    ]
    return [page for page in found if page.is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links_of(text: str) -> list[str]:
    """The relative link targets of markdown text, code left out."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    broken = []
    for target in links_of(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors():
    assert slug("Copy towers: SSCD beside the content tower (2026-12-06)") == (
        "copy-towers-sscd-beside-the-content-tower-2026-12-06"
    )
    assert links_of("see [a](docs/a.md#x) and `[b](c.md)` and [web](https://x.org)") == [
        "docs/a.md#x"
    ]


def test_benchmarks_name_no_issue():
    """BENCHMARKS.md says what was measured and how; the tracker's numbers belong to commits."""
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert not re.findall(r"\bissues? \d+|\bitem \d+", text, flags=re.I)
