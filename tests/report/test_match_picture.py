"""The match map where a person looks at it: the side-by-side picture, ``artsim explain`` and
``Model.explain``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from artsim.cli import main as artsim_main
from artsim.errors import UserError
from artsim.model.embedder import Embedder
from artsim.model.explain import match_map
from artsim.report.match_picture import LINK_COLOUR, colours, match_png, render_match


def _pair(folder: Path) -> tuple[Path, Path, tuple[int, int]]:
    """B: a drawing of 96 px; A: B pasted at the bottom right of a 192 px noisy ground."""
    rng = np.random.default_rng(4)
    original = Image.new("RGB", (96, 96), (240, 200, 40))
    draw = ImageDraw.Draw(original)
    for _ in range(5):
        x, y = (int(v) for v in rng.integers(0, 70, 2))
        draw.ellipse((x, y, x + 30, y + 24), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    ground = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    generated = Image.fromarray(ground).resize((192, 192), Image.Resampling.BICUBIC)
    generated.paste(original, (96, 96))
    a, b = folder / "generated.png", folder / "original.png"
    generated.save(a)
    original.save(b)
    return a, b, (96, 96)


def test_colours_run_from_blue_to_red() -> None:
    low, high = colours(np.array([0.0, 1.0]))
    assert low[2] > low[0] and high[0] > high[2]
    assert colours(np.array([-3.0]))[0].tolist() == low.tolist()  # clipped


def test_the_picture_shows_both_sides_and_links_them(tiny_run: Path, tmp_path: Path) -> None:
    a, b, _ = _pair(tmp_path)
    picture_a, picture_b = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    found = match_map(Embedder.from_run(tiny_run, cache_dir=False), picture_a, picture_b)
    drawn = render_match(picture_a, picture_b, found, height=200)
    assert drawn.height > 200 and drawn.width > 200 + 200  # A (square) and B (square) side by side
    pixels = np.asarray(drawn)
    linked = (pixels == np.array(LINK_COLOUR)).all(axis=-1)
    # the link box on A sits over the pasted original: the bottom-right quarter of A's square
    ys, xs = np.nonzero(linked[:, : drawn.width // 2])
    assert xs.min() >= 8 + 100 - 2 and ys.max() > drawn.height // 2
    assert linked[:, drawn.width // 2 :].any()  # and on B
    png = match_png(picture_a, picture_b, found)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_artsim_explain_writes_the_picture(tiny_run: Path, tmp_path: Path, capsys) -> None:
    a, b, _ = _pair(tmp_path)
    out = tmp_path / "maps" / "match.png"
    assert artsim_main(["explain", str(a), str(b), "--run", str(tiny_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "A matches B best at its bottom right" in printed and "wrote" in printed
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > picture.height
    assert artsim_main(["explain", str(a), str(b), "--run", str(tiny_run), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    x, y = data["a"]["peak"]
    assert x >= 0.5 and y >= 0.5 and len(data["a"]["grid"]) == 12


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--part", "copy"], "no 'copy' score"),
        (["--method", "gradcam"], "unknown match-map method"),
        (["--out", "match.jpg"], "name it .png"),
    ],
)
def test_artsim_explain_refuses_bad_input_in_one_line(
    tiny_run: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:
    a, b, _ = _pair(tmp_path)
    assert artsim_main(["explain", str(a), str(b), "--run", str(tiny_run), *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_artsim_explain_names_a_missing_file(tiny_run: Path, tmp_path: Path, capsys) -> None:
    a, _, _ = _pair(tmp_path)
    missing = tmp_path / "nope.png"
    assert artsim_main(["explain", str(a), str(missing), "--run", str(tiny_run)]) != 0
    err = capsys.readouterr().err
    assert "nope.png" in err and "Traceback" not in err


def test_model_explain_returns_arrays(tiny_run: Path, tmp_path: Path) -> None:
    import artsim

    a, b, (left, top) = _pair(tmp_path)
    model = artsim.load_model(tiny_run, cache_dir=False)
    found = model.explain(a, b, cells=8)
    assert isinstance(found.a.grid, np.ndarray) and found.a.grid.shape == (8, 8)
    assert found.b.grid.dtype == np.float32
    x, y = found.a.peak()
    assert x * 192 >= left and y * 192 >= top
    with pytest.raises(UserError, match="needs a picture for B"):
        model.explain(a, None)
