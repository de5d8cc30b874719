"""Graceful shutdown: SIGTERM under steady load fails no request in flight and loses no
prediction-log record."""

import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from customer_churn.service.app import example_record
from customer_churn.service.prediction_log import read_log
from tests.load.loadtest import Service


def _send(url: str, body: bytes, request_id: str) -> tuple[str, str]:
    """One request on a fresh connection: (outcome, what happened). The outcome is answered,
    refused, closed (the service closed the connection before answering), or failed."""
    headers = {"content-type": "application/json", "x-request-id": request_id}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as r:
            return ("answered" if r.status == 200 else "failed"), f"HTTP {r.status}"
    except urllib.error.URLError as error:
        reason = error.reason
    except OSError as error:
        reason = error
    if isinstance(reason, ConnectionRefusedError):
        return "refused", repr(reason)  # the listener was closed: nothing was sent
    # A reset, or a broken pipe: shutting down, the service closes the connections it has
    # accepted but read no request from, and a client that writes to one after it was closed
    # gets EPIPE instead of ECONNRESET.
    if isinstance(reason, ConnectionError):
        return "closed", repr(reason)
    return "failed", repr(reason)


@pytest.mark.load
def test_sigterm_under_load_drops_nothing(trained, tmp_path, request):
    # No 503 from load shedding when a busy machine stalls the service: it would count as a
    # failed request here.
    service = Service(str(trained.export_dir), tmp_path, max_queue_delay_ms=5000)
    request.addfinalizer(service.stop)  # a failed check must not leave the service running
    service.wait_ready(timeout=60)
    server, server_log = service.process, service.log_path
    base = f"http://127.0.0.1:{service.port}"

    body = json.dumps(example_record()).encode()
    outcomes: dict[str, list[str]] = {"answered": [], "refused": [], "closed": [], "failed": []}
    details: dict[str, str] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def client(number: int) -> None:
        for count in range(100_000):
            request_id = f"load-{number}-{count}"
            outcome, detail = _send(f"{base}/predict", body, request_id)
            with lock:
                outcomes[outcome].append(request_id)
                details[request_id] = detail
            if stop.is_set() or outcome == "refused":
                return

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(1.5)
    server.send_signal(signal.SIGTERM)
    # uvicorn shuts down, then re-raises the signal so that the exit status tells it
    assert server.wait(timeout=30) in (0, -signal.SIGTERM), server_log.read_text()
    stop.set()
    for thread in clients:
        thread.join(timeout=30)

    lines = server_log.read_text().splitlines()
    assert any("Application shutdown complete" in line for line in lines)
    seen = {json.loads(line).get("request_id") for line in lines if line.startswith("{")}
    # A closed connection the service never read a request from was never in flight (it was
    # still in the kernel's queue, or accepted and idle). One the service saw, and did not
    # answer, was.
    in_flight = outcomes["failed"] + [i for i in outcomes["closed"] if i in seen]
    counts = {name: len(ids) for name, ids in outcomes.items()}
    print(f"\nSIGTERM under load: {counts}")
    assert len(outcomes["answered"]) > 20, counts
    assert not in_flight, {i: details[i] for i in in_flight}
    logged, unreadable = read_log(tmp_path / "predictions")
    assert unreadable == 0
    assert sorted(r["request_id"] for r in logged) == sorted(outcomes["answered"]), (
        "every answered request, and only those, is in the prediction log"
    )
