"""The HTTP service (FastAPI) and its page: search originals by image and/or prompt."""

from artsim.serve.app import create_app

__all__ = ["create_app"]
