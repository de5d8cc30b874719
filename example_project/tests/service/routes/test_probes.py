"""The probes: liveness and readiness."""


def test_health_and_readiness(client, trained):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {
        "status": "ready",
        "model_version": trained.model_version,
    }
