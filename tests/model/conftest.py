"""Model-layer fixtures: the packaged towers, loaded once per session.

The towers are frozen and tests only call them under ``torch.no_grad`` (eval mode), so sharing
one instance is safe; a test that would change a tower must build its own.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def efficientnet_tower():
    from artsim.model.towers import create_image_tower

    return create_image_tower("efficientnet-lite0")


@pytest.fixture(scope="session")
def e5_tower():
    from artsim.model.towers import create_text_tower

    return create_text_tower("e5-small")


@pytest.fixture(scope="session")
def minilm_tower():
    from artsim.model.towers import create_text_tower

    return create_text_tower("minilm")
