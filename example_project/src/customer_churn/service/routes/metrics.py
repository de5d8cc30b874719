"""GET /metrics: the Prometheus exposition of the service's metrics."""

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import MetricsDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(metrics: MetricsDep) -> Response:
    """Prometheus exposition of requests, latency, predictions and the model version."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
