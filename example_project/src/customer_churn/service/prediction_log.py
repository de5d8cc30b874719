"""The prediction log: what the service was asked and what it answered, for the drift job.

A request only puts one tuple on an in-memory queue (about a microsecond). `drain()` turns
the queued requests into JSON lines (`prediction_records`) and hands them to a writer thread,
which appends them to rotating files. In the service, `run()` drains every `flush_seconds`
on the event loop; elsewhere, `close()` drains what was recorded. Memory is bounded: when the
queue or the writer's backlog is full, or the disk refuses a write, records are dropped and
counted, and the request is answered all the same. `close()` (on graceful shutdown) writes
everything recorded before it returns.

Why the event loop encodes, not the writer thread: a second thread running Python competes
for the interpreter lock, and the loop then waits for it at every hand-over (ONNX Runtime
and every socket call give the lock up). Measured on a small machine, a thread that encoded
cost the loop about 45 us a request, ten times the encoding itself (about 4.6 us a record);
encoded on the loop in batches, the log costs about 12 us a request. The thread now only
writes, and takes the lock a few times per batch.

Files are named `predictions-<UTC start>.jsonl` and rotate at `max_bytes`; the oldest beyond
`keep_files` are deleted. The last `recent` requests encoded also stay in memory, for the
dashboard.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .prediction_records import request_entries, request_lines

log = logging.getLogger(__name__)
FILE_GLOB = "predictions-*.jsonl"
# Records encoded by one `drain()` in `run()` before the loop serves requests again (about a
# millisecond): a backlog of big batches does not hold the loop for long.
DRAIN_RECORDS = 256
_STOP = object()  # queued by close(): the writer writes what came before it, then stops


class PredictionLog:
    """A bounded, non-blocking, rotating JSON-lines sink of predictions."""

    def __init__(
        self,
        folder: Path,
        *,
        sample_rate: float = 1.0,
        max_queue: int = 10_000,
        max_bytes: int = 50_000_000,
        keep_files: int = 20,
        flush_seconds: float = 0.01,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
        recent: int = 200,
    ) -> None:
        self.folder = Path(folder)
        self.sample_rate = sample_rate
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self.flush_seconds = flush_seconds
        self.on_drop = on_drop or (lambda reason, count: None)
        self.on_write = on_write or (lambda count: None)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # requests not encoded yet
        self._lines: queue.SimpleQueue = queue.SimpleQueue()  # encoded, for the writer
        # Lines handed to the writer and lines it finished (written or dropped): each counter
        # has one thread that adds to it, so their difference is the writer's backlog.
        self._handed = 0
        self._finished = 0
        self._drain_lock = threading.Lock()  # close() may drain while run() does
        self._recent: collections.deque = collections.deque(maxlen=recent)
        self._file = None
        self._size = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._closed = False
        self._thread.start()

    # ------------------------------------------------------------------ the request side
    def record(
        self,
        request_id: str,
        model_version: str | None,
        latency_ms: float,
        inputs: Sequence[dict[str, Any]],
        predictions: Sequence[Any],
        probabilities: Sequence[Any] | None = None,
        variant: str = "champion",
        shadow: bool = False,
    ) -> bool:
        """Queue a request's records; never blocks. False if sampled out or dropped."""
        sampled_out = self.sample_rate < 1.0 and random.random() >= self.sample_rate  # noqa: S311
        if self._closed or sampled_out:
            return False
        if self._queue.qsize() >= self.max_queue:
            self.on_drop("queue_full", len(inputs))
            return False
        self._queue.put(
            (
                time.time(),
                request_id,
                model_version,
                latency_ms,
                inputs,
                predictions,
                probabilities,
                variant,
                shadow,
            )
        )
        return True

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The records of the last requests encoded (newest first), as the log holds them."""
        entries: list[dict[str, Any]] = []
        for item in reversed(self._recent.copy()):  # copy(): atomic, a drain may append
            with contextlib.suppress(TypeError, ValueError):
                entries += list(request_entries(*item))
            if limit is not None and len(entries) >= limit:
                return entries[:limit]
        return entries

    # ------------------------------------------------------------------ encoding
    def drain(self, max_records: int | None = None) -> bool:
        """Encode the queued requests (about `max_records` records at most) and hand their
        lines to the writer; True while more are queued."""
        with self._drain_lock:
            lines: list[bytes] = []
            items: list[tuple] = []
            while max_records is None or len(lines) < max_records:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                try:
                    lines += request_lines(*item)
                except (TypeError, ValueError) as error:  # a value JSON cannot hold: skip it
                    log.warning("prediction log: request %s not logged: %s", item[1], error)
                    self.on_drop("encode_error", len(item[4]))
                    continue
                items.append(item)
            self._recent.extend(items)
            if lines:
                if self._handed - self._finished + len(lines) > self.max_queue:  # a slow disk
                    self.on_drop("queue_full", len(lines))
                else:
                    self._handed += len(lines)
                    self._lines.put(lines)
            return not self._queue.empty()

    async def run(self) -> None:
        """Drain every `flush_seconds` on the event loop, yielding between big batches."""
        while True:
            await asyncio.sleep(self.flush_seconds)
            while self.drain(DRAIN_RECORDS):
                await asyncio.sleep(0)

    def close(self, timeout: float = 10.0) -> None:
        """Write everything recorded, then stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        self.drain()
        self._lines.put(_STOP)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        while (lines := self._lines.get()) is not _STOP:
            self._write(lines)
            self._finished += len(lines)
        if self._file is not None:
            self._file.close()

    def _write(self, lines: list[bytes]) -> None:
        written = 0
        try:
            total = sum(map(len, lines))
            if self._file is not None and self._size + total <= self.max_bytes:
                self._file.write(b"".join(lines))  # the usual case: one call, no rotation
                self._size += total
                written = len(lines)
            for line in lines[written:]:
                self._current(len(line)).write(line)
                self._size += len(line)
                written += 1
            self._file.flush()
        except OSError as error:
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.close()
            self._file = None  # try a fresh file next time: the disk may have recovered
            log.warning("prediction log: %d records dropped: %s", len(lines) - written, error)
            self.on_drop("write_error", len(lines) - written)
        if written:
            self.on_write(written)

    def _current(self, incoming: int):
        """The file to append to, rotated when it would grow beyond `max_bytes`."""
        if self._file is not None and self._size and self._size + incoming > self.max_bytes:
            self._file.close()
            self._file = None
        if self._file is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
            path = self.folder / f"predictions-{stamp}.jsonl"
            self._file = path.open("ab")
            self._size = path.stat().st_size
            self._prune()
        return self._file

    def _prune(self) -> None:
        files = sorted(self.folder.glob(FILE_GLOB))
        for old in files[: max(0, len(files) - self.keep_files)]:
            old.unlink(missing_ok=True)


def read_log(folder: Path) -> tuple[list[dict[str, Any]], int]:
    """Every record in the log folder, oldest file first, and the number of unreadable lines
    (a line torn by a full disk or a killed process is skipped, not fatal)."""
    records: list[dict[str, Any]] = []
    unreadable = 0
    for path in sorted(Path(folder).glob(FILE_GLOB)):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    unreadable += 1
    return records, unreadable
