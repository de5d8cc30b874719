"""The prediction log: bounded, non-blocking, rotating, flushed on close, readable after a tear."""

import asyncio
import json
import threading
import time

from customer_churn.service.prediction_log import (
    DRAIN_RECORDS,
    FILE_GLOB,
    PredictionLog,
    read_log,
)

RECORD = {"a_number": 1.5, "a_category": "x"}


def _log(folder, **options) -> tuple[PredictionLog, dict]:
    counts = {"written": 0, "dropped": {}}

    def dropped(reason, count):
        counts["dropped"][reason] = counts["dropped"].get(reason, 0) + count

    def written(count):
        counts["written"] += count

    return PredictionLog(folder, on_drop=dropped, on_write=written, **options), counts


def test_records_are_written_in_order_and_flushed_on_close(tmp_path):
    log, counts = _log(tmp_path, flush_seconds=60)  # only close() can flush this in time
    for index in range(50):
        assert log.record(f"r{index}", "3", 0.5, [RECORD, RECORD], [1, 0], [0.9, 0.2])
    log.close()
    records, unreadable = read_log(tmp_path)
    assert unreadable == 0 and counts == {"written": 100, "dropped": {}}
    assert [(r["request_id"], r["row"]) for r in records[:3]] == [("r0", 0), ("r0", 1), ("r1", 0)]
    assert records[1] | {"time": None} == {
        "time": None,
        "request_id": "r0",
        "row": 1,
        "model_version": "3",
        "variant": "champion",
        "shadow": False,
        "latency_ms": 0.5,
        "inputs": RECORD,
        "prediction": 0,
        "probability": 0.2,
    }
    assert not log.record("late", "3", 0.5, [RECORD], [1]), "a closed log takes no records"


def test_files_rotate_and_the_oldest_are_pruned(tmp_path):
    log, counts = _log(tmp_path, max_bytes=10_000, keep_files=3, flush_seconds=0.01)
    for index in range(200):
        log.record(f"r{index}", "1", 0.1, [RECORD], [index])
    log.close()
    files = sorted(tmp_path.glob(FILE_GLOB))
    assert len(files) == 3, files
    assert all(path.stat().st_size <= 10_000 for path in files)
    records, _ = read_log(tmp_path)
    assert records[-1]["request_id"] == "r199" and counts["written"] == 200
    assert [r["prediction"] for r in records] == sorted(r["prediction"] for r in records)


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path, monkeypatch):
    log, counts = _log(tmp_path, max_queue=5)
    gate, write = threading.Event(), log._write
    monkeypatch.setattr(log, "_write", lambda lines: gate.wait(10) and write(lines))
    assert all(log.record(f"r{i}", "1", 0.1, [RECORD], [1]) for i in range(5))
    started = time.perf_counter()
    assert not log.record("overflow", "1", 0.1, [RECORD, RECORD], [1, 1]), "the queue is full"
    assert time.perf_counter() - started < 0.05, "a full queue must not block the caller"
    assert not log.drain(), "everything queued was encoded"  # the writer stalls on 5 lines
    assert log.record("r5", "1", 0.1, [RECORD], [1])
    log.drain()  # a sixth line is beyond the backlog the stalled writer may hold
    gate.set()
    log.close()
    assert counts == {"written": 5, "dropped": {"queue_full": 3}}
    assert {r["request_id"] for r in read_log(tmp_path)[0]} == {f"r{i}" for i in range(5)}


def test_run_encodes_on_the_event_loop_and_writes_while_serving(tmp_path):
    log, counts = _log(tmp_path, flush_seconds=0.01)

    async def serve() -> None:
        runner = asyncio.create_task(log.run())
        for index in range(3 * DRAIN_RECORDS):  # more than one drain takes in one go
            log.record(f"r{index}", "1", 0.1, [RECORD], [index])
        deadline = time.monotonic() + 10
        while counts["written"] < 3 * DRAIN_RECORDS and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        runner.cancel()

    asyncio.run(serve())
    assert counts["written"] == 3 * DRAIN_RECORDS, "written while running, before close()"
    assert log.record("last", "1", 0.1, [RECORD], [0])
    log.close()
    records, _ = read_log(tmp_path)
    assert [r["request_id"] for r in records][-2:] == [f"r{3 * DRAIN_RECORDS - 1}", "last"]
    assert [r["prediction"] for r in records[:-1]] == list(range(3 * DRAIN_RECORDS))


def test_a_failing_disk_drops_and_counts_then_recovers(tmp_path):
    blocker = tmp_path / "log"
    blocker.write_text("a file where the log folder should be")
    log, counts = _log(blocker / "inner", flush_seconds=0.01)
    assert log.record("lost", "1", 0.1, [RECORD], [1])
    log.close()
    assert counts["dropped"] == {"write_error": 1} and counts["written"] == 0


def test_numpy_values_are_written_and_unencodable_ones_skipped(tmp_path):
    import numpy as np

    log, counts = _log(tmp_path)
    log.record("numpy", "1", 0.1, [RECORD], [np.int64(1)], [np.float32(0.25)])
    log.record("bad", "1", 0.1, [RECORD | {"a_number": object()}], [1])
    log.record("after", "1", 0.1, [RECORD], np.array([0]), np.array([0.5]))
    log.close()
    records, _ = read_log(tmp_path)
    assert [(r["request_id"], r["prediction"]) for r in records] == [("numpy", 1), ("after", 0)]
    assert records[0]["probability"] == 0.25
    assert counts == {"written": 2, "dropped": {"encode_error": 1}}


def test_text_beyond_ascii_is_kept_and_rotation_counts_bytes(tmp_path):
    log, counts = _log(tmp_path, max_bytes=10_000, keep_files=50)
    for index in range(100):
        log.record(f"r{index}", "1", 0.1, [RECORD | {"a_category": "café ☕"}], [1])
    log.close()
    records, unreadable = read_log(tmp_path)
    assert unreadable == 0 and len(records) == 100 == counts["written"]
    assert {r["inputs"]["a_category"] for r in records} == {"café ☕"}
    files = sorted(tmp_path.glob(FILE_GLOB))
    assert len(files) > 1 and all(path.stat().st_size <= 10_000 for path in files)


def test_sampling_keeps_about_the_configured_share(tmp_path):
    log, counts = _log(tmp_path, sample_rate=0.25)
    kept = sum(log.record(f"r{i}", "1", 0.1, [RECORD], [1]) for i in range(4000))
    log.close()
    assert 800 < kept < 1200 and counts["written"] == kept


def test_a_torn_line_is_skipped_and_counted(tmp_path):
    log, _ = _log(tmp_path)
    log.record("whole", "1", 0.1, [RECORD], [1])
    log.close()
    (path,) = tmp_path.glob(FILE_GLOB)
    with path.open("a") as handle:
        handle.write(json.dumps({"request_id": "torn"})[:10])
    records, unreadable = read_log(tmp_path)
    assert [r["request_id"] for r in records] == ["whole"] and unreadable == 1
