"""GET /model: what is being served."""

from customer_churn.contract import CONTRACT


def test_model_info(client, trained):
    info = client.get("/model").json()
    assert info["version"] == trained.model_version and info["run_id"] == trained.run_id
    assert info["features"] == CONTRACT.feature_names
    assert info["backend"] == "onnx" and info["trained_at"] and info["git_commit"]
