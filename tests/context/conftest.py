"""A real local HTTP server standing in for an OpenWeather-compatible API."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from tailored.context import weather

RAIN = {
    "weather": [{"id": 501, "main": "Rain", "description": "moderate rain"}],
    "main": {"temp": 12.34, "humidity": 80},
    "dt": 1736150400,
    "name": "London",
    "cod": 200,
}


class FakeWeatherAPI:
    """What the server answers (`mode`: ok, slow, error, garbage, notfound) and what it was asked."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.payload: dict = RAIN
        self.delay = 1.0
        self.queries: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}/data/2.5/weather"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.queries)

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with api._lock:
                    api.queries.append(dict(parse_qsl(urlsplit(self.path).query)))
                mode = api.mode
                if mode == "slow":
                    time.sleep(api.delay)
                status, body = {
                    "error": (500, b"upstream exploded"),
                    "garbage": (200, b"{not json"),
                    "notfound": (404, b'{"cod":"404","message":"city not found"}'),
                }.get(mode, (200, json.dumps(api.payload).encode()))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (the timeout tests)

            def log_message(self, format, *args):
                pass

        return Handler

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def weather_api():
    with FakeWeatherAPI() as api:
        yield api


@pytest.fixture(autouse=True)
def _fresh_weather_state():
    """Each test starts with no provider, no breaker state and empty in-process caches."""
    weather.reset()
    yield
    weather.reset()
