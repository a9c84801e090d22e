"""Pictures with (almost) no content: a plain query is refused in one line (every plain picture
matches every other, so no verdict could mean anything), and an original that is plain once
transparency is flattened is flagged at index build and its image matches graded
"uninformative" instead of "copy 99%"."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import artsim
from artsim.cli.index import main as index_main
from artsim.data.pictures.images import MIN_CONTENT_SHARE, content_share
from artsim.errors import ImageError
from artsim.serve.app import create_app


def picture(size=(64, 64), colour=(255, 255, 255), mark: int = 0) -> Image.Image:
    image = Image.new("RGB", size, colour)
    if mark:
        image.paste((0, 0, 0), (10, 10, 10 + mark, 10 + mark))
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_content_share_tells_plain_pictures_from_pictures_with_content():
    assert content_share(picture()) == 0.0
    assert content_share(picture(colour=(0, 0, 0))) == 0.0
    assert content_share(picture((1, 1))) == 0.0
    noisy = io.BytesIO()
    rng = np.random.default_rng(0)
    speckled = np.clip(250 + rng.integers(-4, 5, (300, 300, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(speckled).save(noisy, format="JPEG", quality=60)
    assert content_share(Image.open(noisy)) < MIN_CONTENT_SHARE  # JPEG noise is no content
    # a small drawing on a big canvas is content: 6 x 6 px of 64 x 64 (0.9%)
    assert content_share(picture(mark=6)) == pytest.approx(144 / 128**2, rel=0.3)
    assert content_share(picture(mark=6)) > MIN_CONTENT_SHARE


def test_a_plain_query_is_refused_by_the_api_and_the_service(built_index: Path):
    with artsim.open_index(built_index, read_only=True) as index:
        for colour in ((255, 255, 255), (0, 0, 0), (30, 200, 90)):
            with pytest.raises(ImageError, match="almost nothing but one colour"):
                index.search(image=picture(colour=colour))
            with pytest.raises(ImageError, match="almost nothing but one colour"):
                index.search(image=picture(colour=colour), text="a red fox")
        assert index.search(image=picture(mark=6), k=1)  # a little content is content
    with TestClient(create_app(built_index)) as client:
        answer = client.post("/search", files={"image": ("white.png", png(picture()))})
        assert answer.status_code == 422 and "one colour" in answer.json()["error"]
        answer = client.post(
            "/score",
            files={
                "image_a": ("a.png", png(picture(mark=6))),
                "image_b": ("b.png", png(picture(colour=(0, 0, 0)))),
            },
        )
        assert answer.status_code == 422 and answer.json()["error"].startswith("image_b:")


def test_a_plain_original_is_flagged_at_build_and_its_matches_are_uninformative(
    synthetic_manifest: Path, tiny_run: Path, tmp_path: Path, capsys
):
    data = tmp_path / "data"
    shutil.copytree(synthetic_manifest.parent, data)
    # drawn in white on a transparent canvas: plain white once flattened, as two demo originals
    ghost = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ghost.paste((255, 255, 255, 255), (20, 20, 40, 40))
    ghost.save(data / "images" / "ghost.png")
    with (data / "manifest.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows.append({**rows[0], "id": "ghost", "group": "ghost", "image": "images/ghost.png"})
    with (data / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "index"
    build = ["build", "--run", str(tiny_run), "--data", str(data / "manifest.csv")]
    capsys.readouterr()
    assert index_main([*build, "--out", str(out), "--calibrate-sample", "0"]) == 0
    err = capsys.readouterr().err
    assert "1 original(s) are almost one colour" in err and "'ghost'" in err
    with artsim.open_index(out, read_only=True) as index:
        results = index.search(image=picture(mark=3), k=len(index))
        graded = {result.id: result for result in results}
        assert graded["ghost"].verdict == "uninformative"
        assert graded["ghost"].probability is None
        assert {r.verdict for r in results if r.id != "ghost"} == {"uncalibrated"}
        # a prompt against captions does not read the picture: graded as usual
        by_text = index.search(text=rows[0]["text"], k=len(index))
        assert {r.verdict for r in by_text} == {"uncalibrated"}
