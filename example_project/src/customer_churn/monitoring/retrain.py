"""The retraining relay: Alertmanager's drift alerts in, one run of the training workflow out.

Alertmanager posts its own webhook body, which no CI takes as it is: the relay turns a
notification of firing alerts into the one request that starts the training workflow, with the
drift report attached (dispatch.py).

An alert starts at most one training. Resolved alerts start nothing; nor does an alert already
relayed (Alertmanager repeats a group's notification every group and repeat interval), nor any
alert within `retrain_cooldown` seconds of the last start (the run started covers it). A CI API
that cannot be reached, or refuses, is one log line and a 502 answer, so that Alertmanager
tries again; nothing counts as started then. A body that is not Alertmanager's is a 400 and one
line. The relay remembers in memory: a restart forgets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..jobs.notify import DeliveryError, post
from .dispatch import Alert, Target, drift_report, fitted, reason_of

log = logging.getLogger(__name__)
REMEMBERED = 1_000  # alerts remembered as relayed


class Notification(BaseModel):
    """Alertmanager's webhook body (version 4): the parts the relay reads."""

    status: Literal["firing", "resolved"]
    alerts: list[Alert] = Field(min_length=1)


class Relay:
    """Decides which notifications start training, and starts it: one at a time."""

    def __init__(
        self, target: Target, monitoring_dir: Path, cooldown: float, clock=time.monotonic
    ) -> None:
        self.target = target
        self.monitoring_dir = monitoring_dir
        self.cooldown = cooldown
        self.clock = clock
        self.relayed: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.last_start: float | None = None
        self.lock = threading.Lock()

    def _remember(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.relayed[alert.key] = None
        while len(self.relayed) > REMEMBERED:
            self.relayed.popitem(last=False)

    def _why_not(self, firing: list[Alert], new: list[Alert]) -> str | None:
        """Why this notification starts nothing, or None when it starts training."""
        names = ", ".join(sorted({alert.name for alert in firing}))
        if not firing:
            return "resolved alerts start nothing"
        if not new:
            return f"{names} already started training (a repeated notification)"
        ago = None if self.last_start is None else self.clock() - self.last_start
        if ago is not None and ago < self.cooldown:
            return f"{names}: training started {ago:.0f} s ago, within the cooldown"
        return None

    def handle(self, notification: Notification) -> tuple[int, dict[str, Any]]:
        """The answer to one notification: (HTTP status, body)."""
        firing = [alert for alert in notification.alerts if alert.status == "firing"]
        with self.lock:
            new = [alert for alert in firing if alert.key not in self.relayed]
            if why_not := self._why_not(firing, new):
                self._remember(new)
                log.info("no training started: %s", why_not)
                return 200, {"started": False, "why": why_not}
            reason = reason_of(new)
            report = fitted(reason, drift_report(new, self.monitoring_dir))
            url, body, headers = self.target.request(reason, report)
            try:
                post(url, body, headers, self.target.timeout)
            except DeliveryError as error:
                problem = f"training not started: {self.target.name} {error}"
                log.error("%s; answered 502 for Alertmanager to retry", problem)
                return 502, {"started": False, "error": problem}
            self.last_start = self.clock()
            self._remember(new)
        where = f"{self.target.repository} ({self.target.ref})"
        log.info("training started in %s for: %s", where, reason)
        return 200, {"started": True, "reason": reason}


def create_app(relay: Relay) -> FastAPI:
    """The relay over HTTP: POST /alerts (Alertmanager's webhook) and GET /health."""
    app = FastAPI(title="retraining relay", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def not_a_notification(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in e['loc'][1:]) or 'the body'}: {e['msg']}"
            for e in error.errors()[:3]
        ]
        problem = f"not an Alertmanager webhook body ({'; '.join(problems)})"
        log.warning("notification refused: %s", problem)
        return JSONResponse({"error": problem}, status_code=400)

    @app.post("/alerts")
    def alerts(notification: Notification) -> JSONResponse:
        status, answer = relay.handle(notification)
        return JSONResponse(answer, status_code=status)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
