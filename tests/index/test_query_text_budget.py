"""A query's text is bounded by the text tower's tokens, not by characters: the API, the CLI and
the service cut it to MAX_QUERY_TOKENS (one e5 window) and say so, in any script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import artsim
from artsim.cli.search import search_main
from artsim.index.query import MAX_QUERY_TOKENS, search_index
from artsim.model.embedder import MAX_CHARS_PER_TOKEN
from artsim.serve.app import create_app


class CountingTower:
    """Wraps the tiny text tower: tokens are UTF-8 bytes + 2 (so CJK costs three times English),
    and the longest text it was asked to encode is remembered."""

    def __init__(self, tower):
        self.tower, self.longest = tower, 0

    def token_count(self, text: str) -> int:
        return len(text.encode("utf-8")) + 2

    def encode(self, texts):
        self.longest = max([self.longest, *map(len, texts)])
        return self.tower.encode(texts)

    def __getattr__(self, name):
        return getattr(self.tower, name)


@pytest.fixture
def index(built_index: Path):
    with artsim.open_index(built_index, read_only=True) as opened:
        embedder = opened.model.embedder
        embedder.text_tower = CountingTower(embedder.text_tower)
        embedder.text_cache = None
        yield opened


@pytest.mark.parametrize(
    ("text", "chars_per_token"),
    [("a red fox, watercolor." * 400, 1), ("狐狸水彩画" * 400, 1 / 3), ("á" * 3000, 1 / 2)],
)
def test_the_api_cuts_a_query_to_the_token_budget_in_any_script(index, text, chars_per_token):
    embedder = index.model.embedder
    response = search_index(index._index, embedder, text=text, k=2)
    (cut,) = response.truncated
    assert cut["field"] == "text" and cut["given_chars"] == len(text)
    assert cut["used_tokens"] == MAX_QUERY_TOKENS or cut["used_tokens"] == MAX_QUERY_TOKENS - 1
    assert cut["used_chars"] == pytest.approx((MAX_QUERY_TOKENS - 2) * chars_per_token, abs=1)
    assert embedder.text_tower.longest == cut["used_chars"]  # the tower never saw more
    assert response.to_json()["truncated"] == [cut]
    short = search_index(index._index, embedder, text="a red fox", k=2)
    assert short.truncated == []


def test_a_tower_without_tokens_is_cut_by_characters(built_index: Path):
    with artsim.open_index(built_index, read_only=True) as opened:
        embedder = opened.model.embedder
        text, cut = embedder.cut_to_tokens("x" * 100_000, 8)  # tiny counts chars + 2
        assert len(text) == 6 and cut["used_tokens"] == 8
        embedder.text_tower.token_count = lambda text: None
        text, cut = embedder.cut_to_tokens("x" * 100_000, 8)
        assert len(text) == 8 * MAX_CHARS_PER_TOKEN and cut["used_tokens"] is None


def test_the_cli_and_the_service_say_the_text_was_cut(built_index: Path, capsys):
    long_text = ("a red circle " * 100).strip()  # 1,299 characters: the tiny tower counts 1,301
    capsys.readouterr()
    assert search_main(["--index", str(built_index), "--text", long_text, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["truncated"][0]["used_tokens"] == MAX_QUERY_TOKENS
    assert search_main(["--index", str(built_index), "--text", long_text]) == 0
    assert "cut to its first 510 of 1,299 characters" in capsys.readouterr().out
    with TestClient(create_app(built_index, max_text_chars=1000)) as client:
        answer = client.post("/search", data={"text": long_text}).json()
    assert answer["truncated"] == [
        {"field": "text", "given_chars": 1299, "used_chars": 510, "used_tokens": MAX_QUERY_TOKENS}
    ]
