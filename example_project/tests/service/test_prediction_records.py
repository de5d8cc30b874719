"""The lines of the prediction log: one entry per record, in plain JSON numbers."""

import json

import numpy as np
import pytest

from customer_churn.service.prediction_records import request_entries, request_lines

RECORD = {"a_number": 1.5, "a_category": "x"}


def test_each_record_is_one_entry_with_its_row():
    item = (0.0, "r1", "3", 0.12345, [RECORD, RECORD], np.array([1, 0]), np.array([0.9, 0.2]))
    entries = list(request_entries(*item, "champion", False))
    assert [(e["request_id"], e["row"], e["prediction"]) for e in entries] == [
        ("r1", 0, 1),
        ("r1", 1, 0),
    ]
    assert entries[1]["probability"] == 0.2 and entries[0]["latency_ms"] == 0.123
    assert entries[0]["time"] == "1970-01-01T00:00:00.000+00:00"
    assert "probability" not in next(request_entries(*item[:6], None, "champion", False))


def test_lines_are_json_and_a_value_json_cannot_hold_raises():
    item = (0.0, "r1", "3", 0.1, [RECORD], [np.int64(1)], [np.float32(0.25)], "challenger", True)
    (line,) = request_lines(*item)
    assert line.endswith(b"\n") and json.loads(line)["probability"] == 0.25
    with pytest.raises(TypeError):
        request_lines(0.0, "r2", "3", 0.1, [{"a": object()}], [1], None, "champion", False)
