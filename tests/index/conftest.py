"""Index tests share the root conftest's tiny run and index; their feature cache stays in a temp folder."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def _feature_cache(isolated_feature_cache):
    """Keep the tower feature cache out of the home folder."""
    yield
