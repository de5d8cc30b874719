"""The prediction log: what the service was asked and what it answered, for the drift job.

A request only puts one tuple on an in-memory queue (about a microsecond); a background
thread turns queued requests into JSON lines and appends them to rotating files. Memory is
bounded: when the queue is full, or the disk refuses a write, records are dropped and
counted, and the request is answered all the same. `close()` (on graceful shutdown) writes
what is queued before it returns.

Each line is one record of a request:
`{"time", "request_id", "row", "model_version", "latency_ms", "inputs": {...},
"prediction", "probability"?}`. Files are named `predictions-<UTC start>.jsonl` and rotate
at `max_bytes`; the oldest beyond `keep_files` are deleted.
"""

from __future__ import annotations

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

log = logging.getLogger(__name__)
FILE_GLOB = "predictions-*.jsonl"
_STOP = object()


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
        flush_seconds: float = 0.5,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.sample_rate = sample_rate
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self.flush_seconds = flush_seconds
        self.on_drop = on_drop or (lambda reason, count: None)
        self.on_write = on_write or (lambda count: None)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
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
    ) -> bool:
        """Queue a request's records; never blocks. False if sampled out or dropped."""
        if self._closed or (self.sample_rate < 1.0 and random.random() >= self.sample_rate):
            return False
        if self._queue.qsize() >= self.max_queue:
            self.on_drop("queue_full", len(inputs))
            return False
        self._queue.put(
            (time.time(), request_id, model_version, latency_ms, inputs, predictions, probabilities)
        )
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued, then stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the writer thread
    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[tuple] = []
            try:
                item = self._queue.get(timeout=self.flush_seconds)
                while True:
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if batch:
                self._write(batch)
        if self._file is not None:
            self._file.close()

    def _write(self, batch: list[tuple]) -> None:
        lines = [line for item in batch for line in _lines(*item)]
        written = 0
        try:
            for line in lines:  # JSON is ASCII here: characters are bytes
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
            self._file = path.open("a", encoding="utf-8")
            self._size = path.stat().st_size
            self._prune()
        return self._file

    def _prune(self) -> None:
        files = sorted(self.folder.glob(FILE_GLOB))
        for old in files[: max(0, len(files) - self.keep_files)]:
            old.unlink(missing_ok=True)


def _lines(stamp, request_id, version, latency_ms, inputs, predictions, probabilities):
    time_text = datetime.fromtimestamp(stamp, UTC).isoformat(timespec="milliseconds")
    for row, (record, prediction) in enumerate(zip(inputs, predictions, strict=True)):
        entry = {
            "time": time_text,
            "request_id": request_id,
            "row": row,
            "model_version": version,
            "latency_ms": round(latency_ms, 3),
            "inputs": record,
            "prediction": prediction.item() if hasattr(prediction, "item") else prediction,
        }
        if probabilities is not None:
            entry["probability"] = round(float(probabilities[row]), 6)
        yield json.dumps(entry, separators=(",", ":")) + "\n"


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
