"""A real HTTP server on loopback that records the requests it gets and answers as told: the
CI's API or a chat webhook, for the tests of the retraining relay and of notifications."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self):
        return json.loads(self.body)


class Recorder:
    """`with Recorder() as server:` POSTs to `server.url` are kept in `server.requests` and
    answered `server.status` with `server.answer` (both may change between requests)."""

    def __init__(self, status: int = 204, answer: bytes = b"") -> None:
        self.requests: list[Recorded] = []
        self.status, self.answer = status, answer
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                recorder.requests.append(Recorded("POST", self.path, headers, body))
                self.send_response(recorder.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(recorder.answer)))
                self.end_headers()
                self.wfile.write(recorder.answer)

            def log_message(self, *args) -> None:  # quiet: the test reads `requests`
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_url() -> str:
    """The URL of a loopback port that nothing listens on: a server that is away."""
    return f"http://127.0.0.1:{free_port()}"
