"""The report rendered: a self-contained HTML page (plots and thumbnails inlined) and Markdown
(plots written beside it as PNG files)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from artsim.report import plots
from artsim.report.sections import Section
from artsim.report.text import say

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       max-width: 1120px; margin: 2em auto; padding: 0 1.5em; color: #222; line-height: 1.5; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
img.plot { max-width: 100%; display: block; margin: 0.8em 0; }
.gallery td { vertical-align: top; text-align: center; font-size: 0.78em; width: 120px; }
.gallery td.query { background: #f7f7f7; text-align: left; width: 200px; }
.gallery td.map { width: 260px; }
.gallery img.map { max-width: 260px; }
.thumb { width: 96px; height: 96px; object-fit: contain; border: 3px solid #ddd;
         background: #fafafa; display: block; margin: 0 auto 0.2em; }
.hit .thumb { border-color: #2ca02c; }
.miss { color: #b22222; font-weight: bold; }
.found { color: #2ca02c; font-weight: bold; }
.missing { width: 96px; height: 96px; display: block; margin: 0 auto; background: #eee; }
ul li { margin-bottom: 0.4em; }
"""


def _thumb_html(path: str | None, thumbs: dict[str, str | None]) -> str:
    if not path:
        return '<span class="missing"></span>'
    if path not in thumbs:
        png = plots.thumbnail_png(path)
        thumbs[path] = plots.data_uri(png) if png else None
    uri = thumbs[path]
    return f'<img class="thumb" src="{uri}" alt="">' if uri else '<span class="missing"></span>'


def _gallery_html(section: Section, items: dict[str, Any], lang: str) -> str:
    thumbs: dict[str, str | None] = {}
    rows = []
    for entry in section.gallery:
        query = items.get(entry["query"], {})
        text = query.get("text") or ""
        text = text if len(text) <= 90 else text[:87] + "…"
        status = (
            f'<span class="found">{html.escape(say(lang, "gallery_hit"))}</span>'
            if entry["rank"] <= 1
            else f'<span class="miss">{html.escape(say(lang, "gallery_rank", rank=entry["rank"]))}</span>'
        )
        cells = [
            f'<td class="query">{_thumb_html(query.get("image"), thumbs)}'
            f"<b>{html.escape(entry['query'])}</b><br>{html.escape(text)}<br>{status}</td>"
        ]
        for candidate in entry["top"]:
            original = items.get(candidate["id"], {})
            css = "hit" if candidate.get("hit") else ""
            mark = " ✓" if candidate.get("hit") else ""
            cells.append(
                f'<td class="{css}">{_thumb_html(original.get("image"), thumbs)}'
                f"{html.escape(candidate['id'])}{mark}<br>{candidate['score']:.3f}</td>"
            )
        png = section.maps.get(entry["query"])
        if png:
            cells.append(
                f'<td class="map"><img class="map" src="{plots.data_uri(png)}" alt=""><br>'
                f"{html.escape(say(lang, 'gallery_map'))}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return '<table class="gallery">' + "".join(rows) + "</table>"


def _table_html(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline_code_html(text: str) -> str:
    # the templates mark commands with backticks, as Markdown does
    parts = html.escape(text).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def render_html(title: str, meta: str, sections: Sequence[Section], items: dict, lang: str) -> str:
    """The whole report as one self-contained HTML page (plots and thumbnails as data URIs)."""
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="meta">{html.escape(meta)}</p>']
    for section in sections:
        body.append(f'<h2 id="{section.key}">{html.escape(section.title)}</h2>')
        body.extend(f"<p>{_inline_code_html(p)}</p>" for p in section.paragraphs)
        for header, rows in section.tables:
            body.append(_table_html(header, rows))
        for stem, png in section.images:
            body.append(f'<img class="plot" alt="{html.escape(stem)}" src="{plots.data_uri(png)}">')
        if section.gallery:
            body.append(_gallery_html(section, items, lang))
        if section.bullets:
            body.append(
                "<ul>"
                + "".join(f"<li>{_inline_code_html(b)}</li>" for b in section.bullets)
                + "</ul>"
            )
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table_md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(c) for c in header) + " |"]
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(
    title: str, meta: str, sections: Sequence[Section], lang: str, image_dir: Path, out_dir: Path
) -> str:
    """The report as Markdown; plots are written as PNG files under ``image_dir``."""
    lines = [f"# {title}", "", f"_{meta}_", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for header, rows in section.tables:
            lines += [_table_md(header, rows), ""]
        for stem, png in section.images:
            image_dir.mkdir(parents=True, exist_ok=True)
            path = image_dir / f"{stem}.png"
            path.write_bytes(png)
            lines += [f"![{stem}]({path.relative_to(out_dir).as_posix()})", ""]
        if section.gallery:
            header = [say(lang, "query"), say(lang, "col_rank"), "top-5"]
            rows = []
            for entry in section.gallery:
                top = ", ".join(
                    f"{c['id']}{' ✓' if c.get('hit') else ''} ({c['score']:.3f})"
                    for c in entry["top"]
                )
                rows.append([entry["query"], str(entry["rank"]), top])
            lines += [_table_md(header, rows), ""]
            for number, entry in enumerate(section.gallery, start=1):
                png = section.maps.get(entry["query"])
                if not png:
                    continue
                image_dir.mkdir(parents=True, exist_ok=True)
                path = image_dir / f"map-{number:02d}.png"
                path.write_bytes(png)
                caption = f"{entry['query']}: {say(lang, 'gallery_map')}"
                lines += [f"![{caption}]({path.relative_to(out_dir).as_posix()})", ""]
        for bullet in section.bullets:
            lines.append(f"- {bullet}")
        if section.bullets:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
