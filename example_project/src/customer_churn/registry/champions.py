"""The history of the `champion` alias (which version held it, from when, and why) and
`rollback`, which moves the alias back along it.

Every move of the alias (a promotion, a rollback) is one tag on the registered model,
`champion.<n>` with n counting from 1, whose value is JSON: the version, the version it
replaced, when, the action and the reason. Tags travel with the model on any MLflow store
(the SQLite file here, the shared server in production), so no other store is needed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from ..errors import ProjectError
from ..settings import Settings
from .store import configure_tracking
from .tracking import another_contract

CHAMPION = "champion"  # the alias of the version in production
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
    fields = {key: field for key, field in asdict(move).items() if key in FIELDS}
    client.set_registered_model_tag(name, f"{PREFIX}{move.number}", json.dumps(fields))
    return move


def previous_champion(recorded: list[Move], current: str) -> str | None:
    """The champion that `current` replaced when it was last promoted, else None.

    Promotions, not rollbacks, are followed: after a rollback from 3 to 2, the next rollback
    goes to the champion before 2, not back to 3."""
    for move in reversed(recorded):
        if move.action == "promote" and move.version == current:
            return move.previous
    return None


def champion_history(settings: Settings) -> list[Move]:
    """The recorded moves of the champion alias, oldest first (none for an unknown model)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_tracking(settings)
    try:
        return moves(MlflowClient(), settings.registered_model_name)
    except MlflowException:
        return []


def rollback(settings: Settings, to: str | None = None, reason: str = "") -> Move:
    """Move the champion alias back to the champion the current one replaced, or to version
    `to`; tag both versions with when and why, record the move; return it."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    configure_tracking(settings)
    client = MlflowClient()
    name = settings.registered_model_name
    try:
        current = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        raise ProjectError(
            f"'{name}' has no {CHAMPION} to roll back: promote a version first"
        ) from None
    target = to or previous_champion(moves(client, name), current)
    if target is None:
        raise ProjectError(
            f"no champion before version {current} of '{name}' is recorded: name the version "
            "to roll back to with --to VERSION"
        )
    if target == current:
        raise ProjectError(f"version {target} of '{name}' is the {CHAMPION} already")
    try:
        version = client.get_model_version(name, target)
    except MlflowException:
        raise ProjectError(f"'{name}' has no version {target!r}") from None
    if another_contract(version):
        raise ProjectError(
            f"version {target} was trained on another feature contract than this project's: "
            "the service would refuse it"
        )
    why = reason.strip() or "rolled back by hand"
    client.set_registered_model_alias(name, CHAMPION, target)
    move = record(client, name, target, current, "rollback", why)
    for key, value in {"at": move.at, "reason": move.reason, "from": current}.items():
        client.set_model_version_tag(name, target, f"rollback.{key}", value)
    for key, value in {"at": move.at, "reason": move.reason, "to": target}.items():
        client.set_model_version_tag(name, current, f"rolled_back.{key}", value)
    return move
