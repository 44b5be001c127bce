"""Fixtures for the console tests: an app on the tone model, and a real server in a thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from urgence.app.server import create_app

from .fakes import ToneModel


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    app = create_app(ToneModel(), data_dir=data_dir, max_upload_bytes=2_000_000)
    with TestClient(app) as test_client:
        yield test_client


class ServerThread:
    """A real uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
SHIPPED_MODEL = REPO / "models" / "kws"


@pytest.fixture(scope="session")
def shipped_model():
    """The shipped keyword model; the tests that need it skip until it is trained."""
    if not SHIPPED_MODEL.with_suffix(".json").exists():
        pytest.skip(f"no shipped model yet ({SHIPPED_MODEL}.json): train one to run this test")
    from urgence.kws.model import KeywordModel

    return KeywordModel.load(SHIPPED_MODEL)


@pytest.fixture(scope="session")
def expected_examples() -> dict:
    """examples/expected.json: the example calls and their true services and keywords."""
    path = EXAMPLES / "expected.json"
    if not path.exists():
        pytest.skip(f"no example calls yet ({path})")
    return json.loads(path.read_text(encoding="utf-8"))
