"""Load tests of the service on this machine, over loopback: capacity, overload and soak.

    python -m tests.load.loadtest overload --model-uri models/model
    python -m tests.load.loadtest soak --model-uri models/model --seconds 300

Each starts the service in a child process (one uvicorn worker, as `serve` runs it), drives
it with keep-alive HTTP/1.1 connections from an asyncio client in this process, and stops it.

- capacity: requests/s answered by `connections` clients that each wait for an answer
  before they send again (closed loop).
- overload: requests sent at a fixed rate, twice the capacity, whatever the answers
  (open loop). Latency counts from when a request was due, not from when a connection was
  free, so a queue in front of the service is not hidden. The service must answer the
  admitted requests within a bounded time and refuse the rest quickly with 503.
- soak: a steady open-loop load at half the capacity for minutes; no error is allowed,
  and the resident memory of the service at the start and the end is reported.

The client is small on purpose (a few microseconds a request): on a machine of two cores it
shares the CPU with the service, and a heavier client would measure itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from customer_churn.service.app import example_record

PACKAGE = "customer_churn"

CLIENT_ERROR = 0  # the status recorded for a request that got no HTTP answer
IDLE_SECONDS = 2.0
NO_ANSWER = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)
# Records per request in the overload test. Refusing a request costs what parsing it costs
# (HTTP and the framework, most of a single-record request in one Python process), so one
# worker can shed twice its capacity only of requests that cost well over twice that.
OVERLOAD_BATCH = 50


@dataclass
class Outcome:
    """What a load run got back: statuses, and latencies (seconds) by status."""

    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: dict[int, list[float]] = field(default_factory=dict)

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] += 1
        self.latencies.setdefault(status, []).append(latency)

    def extend(self, other: Outcome) -> None:
        """Add another run's answers and time to this one (a long run measured in parts)."""
        self.seconds += other.seconds
        self.statuses.update(other.statuses)
        for status, values in other.latencies.items():
            self.latencies.setdefault(status, []).extend(values)

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def share(self, status: int) -> float:
        return self.statuses[status] / self.sent if self.sent else 0.0

    def percentile_ms(self, status: int, q: float) -> float | None:
        values = sorted(self.latencies.get(status, []))
        if not values:
            return None
        return round(values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000, 2)

    def per_second(self, status: int = 200) -> float:
        return self.statuses[status] / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 2),
            "sent": self.sent,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "answered_per_second": round(self.per_second(200), 1),
            "p50_ms_200": self.percentile_ms(200, 50),
            "p99_ms_200": self.percentile_ms(200, 99),
            "p99_ms_503": self.percentile_ms(503, 99),
            "share_503": round(self.share(503), 4),
        }


class Client:
    """POSTs one body to one path over a pool of keep-alive connections."""

    def __init__(self, port: int, path: str, body: bytes, max_connections: int = 512) -> None:
        self.port = port
        self.request = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        # Connections ready for another request, with when each was last used: the service
        # closes one idle for 5 s (uvicorn's keep-alive), so those idle for 2 s are dropped.
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(max_connections)
        self.retry_after: set[str] = set()  # the Retry-After values of the 503s received
        self.failures: Counter = Counter()  # why requests got no answer, by exception

    async def send(self) -> int:
        """One request; its status, or CLIENT_ERROR when the connection failed."""
        async with self.slots:
            now = time.monotonic()
            while self.idle and (now - self.idle[0][2] > IDLE_SECONDS or self.idle[0][0].at_eof()):
                self.idle.pop(0)[1].close()
            if self.idle:
                reader, writer, _ = self.idle.pop()
            else:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError as error:
                    self.failures[f"connect: {type(error).__name__}"] += 1
                    return CLIENT_ERROR
            try:
                writer.write(self.request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
            except NO_ANSWER as error:
                self.failures[type(error).__name__] += 1
                writer.close()
                return CLIENT_ERROR
            if status == 503:
                retry = re.search(rb"(?i)\r\nretry-after: *([^\r]*)", head)
                self.retry_after.add(retry.group(1).decode() if retry else "")
            if not length or re.search(rb"(?i)\r\nconnection: *close", head):
                writer.close()  # a body of unknown length (chunked) ends the connection here
            else:
                self.idle.append((reader, writer, time.monotonic()))
            return status

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


async def closed_loop(client: Client, connections: int, seconds: float) -> Outcome:
    """`connections` clients sending back to back for `seconds`."""
    outcome = Outcome()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while (now := time.perf_counter()) < deadline:
            status = await client.send()
            outcome.add(status, time.perf_counter() - now)

    await asyncio.gather(*(worker() for _ in range(connections)))
    outcome.seconds = time.perf_counter() - started
    return outcome


async def open_loop(client: Client, rate: float, seconds: float) -> Outcome:
    """Requests due at `rate` a second for `seconds`, each sent when due."""
    outcome = Outcome()
    started = time.perf_counter()
    tasks: set[asyncio.Task] = set()

    async def one(due: float) -> None:
        status = await client.send()
        outcome.add(status, time.perf_counter() - due)

    for index in range(int(rate * seconds)):
        due = started + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks)
    outcome.seconds = time.perf_counter() - started
    return outcome


def resident_mb(pid: int) -> float:
    """Resident memory of a process (Linux), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


class Service:
    """The service in a child process on a free loopback port, with extra settings."""

    def __init__(self, model_uri: str, log_dir: Path, **settings: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        prefix = f"{PACKAGE.upper()}_"
        env = os.environ | {f"{prefix}PREDICTION_LOG_DIR": str(log_dir / "predictions")}
        env |= {f"{prefix}{name.upper()}": str(value) for name, value in settings.items()}
        command = [sys.executable, "-m", PACKAGE, "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--model-uri", model_uri]  # fmt: skip
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "service.log"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=log)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the service did not get ready:\n{self.log_path.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)

    @property
    def rss_mb(self) -> float:
        return resident_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> Service:
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def body_of(batch: int) -> bytes:
    record = example_record()
    return json.dumps(record if batch == 1 else [record] * batch).encode()


async def overload(
    port: int, body: bytes, *, connections: int = 8, seconds: float = 6.0, factor: float = 2.0
) -> dict[str, Any]:
    """Capacity at `connections` clients, then an open-loop run at `factor` times it."""
    warm = Client(port, "/predict", body)
    await closed_loop(warm, connections, 1.0)
    capacity = await closed_loop(warm, connections, 3.0)
    warm.close()
    await asyncio.sleep(0.5)
    rate = factor * capacity.per_second(200)
    offered = Client(port, "/predict", body)
    result = await open_loop(offered, rate, seconds)
    offered.close()
    return {
        "capacity_per_second": round(capacity.per_second(200), 1),
        "capacity_p99_ms": capacity.percentile_ms(200, 99),
        "offered_per_second": round(rate, 1),
        **result.summary(),
        "retry_after": sorted(offered.retry_after),
        "client_failures": dict(offered.failures),
    }


async def soak(
    service: Service, body: bytes, *, seconds: float, share: float = 0.5, sample_every: float = 10
) -> dict[str, Any]:
    """A steady open-loop load at `share` of the capacity; memory sampled as it runs."""
    client = Client(service.port, "/predict", body)
    await closed_loop(client, 8, 2.0)  # warm-up: first allocations, caches, log files
    capacity = await closed_loop(client, 8, 3.0)
    rate = share * capacity.per_second(200)
    start_mb = service.rss_mb
    samples = [start_mb]
    total = Outcome()
    elapsed = 0.0
    while elapsed < seconds:
        part = await open_loop(client, rate, min(sample_every, seconds - elapsed))
        total.extend(part)
        elapsed += part.seconds
        samples.append(service.rss_mb)
    client.close()
    end_mb = samples[-1]
    errors = total.sent - total.statuses[200]
    return {
        "rate_per_second": round(rate, 1),
        **total.summary(),
        "errors": errors,
        "rss_start_mb": round(start_mb, 1),
        "rss_end_mb": round(end_mb, 1),
        "rss_max_mb": round(max(samples), 1),
        "rss_growth_mb": round(end_mb - start_mb, 1),
        "client_failures": dict(client.failures),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.loadtest")
    parser.add_argument("test", choices=["overload", "soak"])
    parser.add_argument("--model-uri", default="models/model", help="export folder to serve")
    parser.add_argument("--seconds", type=float, default=None, help="length of the load")
    parser.add_argument(
        "--batch", type=int, default=None, help="records per request (overload 50, soak 1)"
    )
    parser.add_argument(
        "--max-growth-mb", type=float, default=20.0, help="soak: most RSS growth allowed"
    )
    args = parser.parse_args(argv)
    if not Path(args.model_uri).is_dir():
        parser.error(f"{args.model_uri} is not an export folder: run `make train` first")
    batch = args.batch or (OVERLOAD_BATCH if args.test == "overload" else 1)
    if batch < 1:
        parser.error(f"--batch must be at least 1 (got {batch})")
    body = body_of(batch)
    with tempfile.TemporaryDirectory() as scratch, Service(args.model_uri, Path(scratch)) as svc:
        if args.test == "overload":
            report = asyncio.run(overload(svc.port, body, seconds=args.seconds or 6.0))
            failed = set(report["statuses"]) - {"200", "503"} != set()
        else:
            report = asyncio.run(soak(svc, body, seconds=args.seconds or 300.0))
            failed = report["errors"] > 0 or report["rss_growth_mb"] > args.max_growth_mb
    print(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
