"""Validation errors speak of the shape the client sent."""

from tests.service.conftest import BOUNDED


def test_errors_speak_of_the_shape_sent(client, record):
    """One bad field in one record is one error at body.<field>; in a list, at body.<i>.<field>."""
    record[BOUNDED.name] = BOUNDED.maximum + 1
    single = client.post("/predict", json=record).json()["detail"]
    assert [e["loc"] for e in single] == [["body", BOUNDED.name]]
    listed = client.post("/predict", json=[record, record]).json()["detail"]
    assert [e["loc"] for e in listed] == [["body", 0, BOUNDED.name], ["body", 1, BOUNDED.name]]
