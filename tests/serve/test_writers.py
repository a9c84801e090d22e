"""A token server and other writers take turns: the CLI can change an index the server is
serving, and a write that cannot get the lock in time answers 503 in one line."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from artsim.cli.index import main as index_main
from artsim.serve.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "index"))
from fault_worker import hold

TOKEN = "s3cret-token-for-tests"


def test_token_server_and_other_writers_take_turns(index_copy: Path, monkeypatch):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(index_copy, token=TOKEN)) as client:
        before = client.get("/health").json()["count"]
        # the CLI changes the index while the token server has it open for writing
        assert index_main(["remove", "--index", str(index_copy), "--id", "g000-orig"]) == 0
        assert client.get("/health").json()["count"] == before - 1
        assert client.get("/originals/g000-orig").status_code == 404
        # another process holds the write lock: the service's write gives up with a 503
        context = multiprocessing.get_context("forkserver")
        locked = context.Event()
        holder = context.Process(target=hold, args=(index_copy, 30, locked))
        holder.start()
        try:
            assert locked.wait(60)
            monkeypatch.setenv("ARTSIM_INDEX_LOCK_TIMEOUT", "0.2")
            answer = client.delete("/originals/g001-orig", headers=auth)
            assert answer.status_code == 503
            assert f"pid {holder.pid}" in answer.json()["error"]
            assert client.get("/health").json()["count"] == before - 1  # reads go on
        finally:
            holder.kill()
            holder.join()
        assert client.delete("/originals/g001-orig", headers=auth).status_code == 200
        assert client.get("/health").json()["count"] == before - 2
