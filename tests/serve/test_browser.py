"""The page in a real browser: Debian's chromium, headless, driven by Playwright.

Uploads an original of the synthetic corpus, expects it ranked first, switches to Spanish, and
saves screenshots in the test's tmp folder; presses "why?" on a result and checks that the match
map lies over both pictures. Skipped, saying why, without /usr/bin/chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from artsim.serve.app import create_app

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.slow


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        print("SKIPPED browser test: /usr/bin/chromium is missing (apt-get install -y chromium)")
        pytest.skip("/usr/bin/chromium is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield launched
        finally:
            launched.close()


def test_upload_finds_its_original_first(
    browser, built_index, synthetic_manifest, live_server, tmp_path
):
    base_url = live_server(create_app(built_index))
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(base_url + "/")
    assert page.locator("h1").inner_text() == "artsim"
    page.wait_for_function("document.getElementById('health').textContent.length > 0")

    page.set_input_files("#image", str(synthetic_manifest.parent / "images" / "g004_orig.png"))
    page.fill("#text", "")
    page.click("#submit")
    first = page.locator(".result").first
    first.wait_for(timeout=15_000)
    assert first.get_attribute("data-id") == "g004-orig"
    assert "uncalibrated" in first.locator(".verdict").inner_text()
    page.wait_for_function(
        "[...document.querySelectorAll('.result img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(tmp_path / "search-en.png"), full_page=True)

    # the same results in Spanish, and ?lang=es in the address
    page.click("#lang-es")
    assert "lang=es" in page.url
    assert page.locator("#submit").inner_text() == "Buscar"
    assert first.locator(".verdict").inner_text() == "sin calibrar"
    page.screenshot(path=str(tmp_path / "search-es.png"), full_page=True)

    # a fresh page opened with ?lang=es starts in Spanish; an empty query says what is missing
    page.goto(base_url + "/?lang=es")
    assert page.locator("html").get_attribute("lang") == "es"
    page.click("#submit")
    assert "añade una imagen" in page.locator("#error").inner_text()

    # a server error (not an image) is shown, not swallowed
    not_image = tmp_path / "fake.png"
    not_image.write_text("not pixels")
    page.set_input_files("#image", str(not_image))
    page.click("#submit")
    page.wait_for_function("!document.getElementById('error').hidden")
    assert "not an image" in page.locator("#error").inner_text()
    print(f"screenshots: {tmp_path / 'search-en.png'} {tmp_path / 'search-es.png'}")


def test_calibrated_page_says_what_derived_means_for_this_query(
    browser, index_copy, synthetic_manifest, live_server, monkeypatch
):
    """A collection calibrated with background-normalised image decisions: the page gives the
    threshold of THIS query in score units (the API's derived_threshold) and says why, in
    English and Spanish."""
    import artsim.index.calibration_fit as calibration_fit
    from artsim.index.calibrate import calibrate_index
    from artsim.index.catalog import ArtIndex

    monkeypatch.setattr(calibration_fit, "_recall_at", lambda c, rate: float(c.normalised))
    index = ArtIndex.open(index_copy)
    try:
        calibrate_index(index, index.load_embedder(), sample=6)
    finally:
        index.close()
    base_url = live_server(create_app(index_copy))
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    with page.expect_response(lambda r: r.url.endswith("/search")) as answer:
        page.goto(base_url + "/")
        page.wait_for_function("document.getElementById('health').textContent.length > 0")
        page.set_input_files("#image", str(synthetic_manifest.parent / "images" / "g002_orig.png"))
        page.click("#submit")
    data = answer.value.json()
    page.locator(".result").first.wait_for(timeout=15_000)
    threshold = data["derived_threshold"]
    assert data["calibration"]["background"]["image"]["rank"] == 4 and threshold is not None
    said = page.locator("#calibration").inner_text()
    assert f"score ≥ {threshold:.3f}" in said and "4th closest original" in said
    page.click("#lang-es")
    page.wait_for_function("document.getElementById('calibration').textContent.includes('umbral')")
    said = page.locator("#calibration").inner_text()
    assert f"puntuación ≥ {threshold:.3f}" in said and "4.º original más cercano" in said


def test_why_overlays_the_match_map_on_both_pictures(
    browser, built_index, synthetic_manifest, live_server, tmp_path
):
    import numpy as np
    from PIL import Image

    # the query: g004's original pasted at the bottom right of a noisy ground
    original = Image.open(synthetic_manifest.parent / "images" / "g004_orig.png").convert("RGB")
    ground = np.random.default_rng(7).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    query = Image.fromarray(ground).resize((64, 64), Image.Resampling.BICUBIC)
    query.paste(original, (32, 32))
    query_path = tmp_path / "collage.png"
    query.save(query_path)

    base_url = live_server(create_app(built_index))
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(base_url + "/")
    page.set_input_files("#image", str(query_path))
    page.click("#submit")
    card = page.locator('.result[data-id="g004-orig"]')
    card.wait_for(timeout=15_000)
    page.wait_for_function(
        "[...document.querySelectorAll('.result img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    why = card.locator("button.why")
    assert why.inner_text() == "why?"
    why.click()
    heat_b = card.locator("canvas.heat")
    heat_a = page.locator("#preview-box canvas.heat")
    heat_b.wait_for(timeout=15_000)
    heat_a.wait_for(timeout=15_000)
    assert why.get_attribute("aria-pressed") == "true"
    assert page.locator("canvas.heat").count() == 2  # on the query and on this result only
    # each overlay lies exactly over its picture
    for canvas, picture in ((heat_b, card.locator("img")), (heat_a, page.locator("#preview"))):
        over, under = canvas.bounding_box(), picture.bounding_box()
        for key in ("x", "y", "width", "height"):
            assert abs(over[key] - under[key]) <= 1, (key, over, under)
    # on the query the heat is strongest (reddest) where the original was pasted: bottom right
    peak = page.evaluate(
        """() => {
          const c = document.querySelector('#preview-box canvas.heat');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let best = -1e9, x = 0, y = 0;
          for (let i = 0; i < d.length; i += 4) {
            const red = (d[i] - d[i + 1]) * d[i + 3];  // red over green grows to the scale's top
            if (red > best) { best = red; x = (i / 4) % c.width; y = Math.floor(i / 4 / c.width); }
          }
          return [x / c.width, y / c.height];
        }"""
    )
    page.screenshot(path=str(tmp_path / "why-en.png"), full_page=True)
    assert peak[0] >= 0.5 and peak[1] >= 0.5, peak
    assert card.locator(".why-note").is_visible()

    # Spanish: the label changes and the map stays on show
    page.click("#lang-es")
    card = page.locator('.result[data-id="g004-orig"]')
    assert card.locator("button.why").inner_text() == "¿por qué?"
    card.locator("canvas.heat").wait_for(timeout=15_000)
    page.screenshot(path=str(tmp_path / "why-es.png"), full_page=True)

    # a second press hides it
    card.locator("button.why").click()
    page.wait_for_function("document.querySelectorAll('canvas.heat').length === 0")
    print(f"screenshots: {tmp_path / 'why-en.png'} {tmp_path / 'why-es.png'}")
