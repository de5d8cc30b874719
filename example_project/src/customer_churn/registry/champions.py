"""The history of the `champion` alias: which version held it, from when, and why.

Every move of the alias (a promotion, a rollback) is one tag on the registered model,
`champion.<n>` with n counting from 1, whose value is JSON: the version, the version it
replaced, when, the action and the reason. Tags travel with the model on any MLflow store
(the SQLite file here, the shared server in production), so no other store is needed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

PREFIX = "champion."
MAX_REASON = 1000  # characters: MLflow bounds the length of a tag's value
FIELDS = ("version", "previous", "at", "action", "reason")  # of the JSON value


@dataclass(frozen=True)
class Move:
    """One move of the `champion` alias."""

    number: int
    version: str
    previous: str | None  # the champion it replaced; None for the first
    at: str  # ISO 8601, UTC
    action: str  # "promote" or "rollback"
    reason: str


def moves(client, name: str) -> list[Move]:
    """The recorded moves of `name`'s champion alias, oldest first (unreadable tags skipped)."""
    tags = client.get_registered_model(name).tags or {}
    found = []
    for key, value in tags.items():
        number = key.removeprefix(PREFIX)
        if not key.startswith(PREFIX) or not number.isdigit():
            continue
        try:
            fields = json.loads(value)
            found.append(Move(int(number), **{k: fields[k] for k in FIELDS}))
        except (ValueError, TypeError, KeyError):
            continue
    return sorted(found, key=lambda move: move.number)


def record(client, name: str, version: str, previous: str | None, action: str, reason: str) -> Move:
    """Record a move of the alias (made by the caller) as the next `champion.<n>` tag."""
    recorded = moves(client, name)
    move = Move(
        recorded[-1].number + 1 if recorded else 1,
        str(version),
        None if previous is None else str(previous),
        datetime.now(UTC).isoformat(timespec="seconds"),
        action,
        reason[:MAX_REASON],
    )
    value = {key: value for key, value in asdict(move).items() if key in FIELDS}
    client.set_registered_model_tag(name, f"{PREFIX}{move.number}", json.dumps(value))
    return move


def previous_champion(recorded: list[Move], current: str) -> str | None:
    """The champion that `current` replaced when it was last promoted, else None.

    Promotions, not rollbacks, are followed: after a rollback from 3 to 2, the next rollback
    goes to the champion before 2, not back to 3."""
    for move in reversed(recorded):
        if move.action == "promote" and move.version == current:
            return move.previous
    return None
