"""The drafted contract as Python source, written by hand's rules (ruff-formatted as it is),
and the guard that keeps a contract someone edited from being replaced."""

import hashlib
import re
import textwrap
from pathlib import Path

from ..errors import DataError
from ..fields import Categorical, Numeric
from .files import write_text
from .infer import MARGIN, Draft

LINE_LENGTH = 100
# The last line of a written contract: the hash of the text above it, so an edit shows.
MARKER = "# Written by `contract init` ({digest}): once edited, only --force replaces it."
MARKED = re.compile(r"# Written by `contract init` \(([0-9a-f]{16})\)")
# sha256 of the example contracts the template ships (classification, regression): an
# untouched example may be replaced without --force.
EXAMPLES = {
    "76dfd7de17fb8e32d5349f079eb50c762679b350f36d63b82ceebeaa62fcb99c",  # pragma: allowlist secret
    "e19229e0f351f12f6d8a67685787cfb6a4057796c694b6aea047fca49a3618be",  # pragma: allowlist secret
}


def _literal(value) -> str:
    if isinstance(value, str):
        text = repr(value)  # in single quotes only if the text holds a single quote
        # Double quotes, unless the text holds some: ruff's choice too.
        return '"' + text[1:-1] + '"' if text[0] == "'" and '"' not in value else text
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return f"{int(value):_}" if abs(value) >= 10_000 else str(int(value))


def _layout(head: str, items: list, tail: str, indent: int, after: str = ",") -> list[str]:
    """`head item, item tail` on one line when it fits, else one item a line (items that
    are lists are laid out the same way), each followed by a comma: ruff keeps either."""
    flat = [item if isinstance(item, str) else _flat(*item) for item in items]
    line = " " * indent + head + ", ".join(flat) + tail + after
    if len(line) <= LINE_LENGTH:
        return [line]
    lines = [" " * indent + head]
    for item in items:
        if isinstance(item, str):
            lines.append(" " * (indent + 4) + item + ",")
        else:
            lines += _layout(*item, indent=indent + 4)
    return [*lines, " " * indent + tail + after]


def _flat(head: str, items: list, tail: str) -> str:
    parts = [item if isinstance(item, str) else _flat(*item) for item in items]
    return head + ", ".join(parts) + (",)" if head == "(" and len(parts) == 1 else tail)


def _feature(feature: Numeric | Categorical) -> tuple[str, list, str]:
    args: list = [_literal(feature.name), _literal(feature.description)]
    if isinstance(feature, Categorical):
        args.append(("(", [_literal(c) for c in feature.categories], ")"))
        kind = "Categorical("
    else:
        args += [_literal(feature.minimum), _literal(feature.maximum)]
        args += ["integer=True"] if feature.integer else []
        kind = "Numeric("
    args += [] if feature.nullable else ["nullable=False"]
    return kind, args, ")"


def _target(draft: Draft) -> tuple[str, list, str]:
    target = draft.contract.target
    args: list = [_literal(target.name), _literal(target.description), _literal(target.kind)]
    if target.kind == "classification":
        args.append(("(", [_literal(c) for c in target.classes], ")"))
    else:
        args += [f"minimum={_literal(target.minimum)}", f"maximum={_literal(target.maximum)}"]
    return "target=Target(", args, ")"


def _docstring(draft: Draft, source: str) -> list[str]:
    about = (
        f"Drafted by `contract init` from {source} ({draft.rows} rows). Fill in every "
        '"TODO: describe" with what the column means: the API documentation and the model '
        "card show these descriptions. The numeric ranges are the observed ones widened by "
        f"{MARGIN:.0%} of their span on each side and rounded outward (not below 0 for a column "
        "without negative values): set them to what the values can really be."
    )
    first = "The feature contract: what the model reads and predicts. Changing a feature is one"
    return [f'"""{first} edit here.', "", *textwrap.wrap(about, LINE_LENGTH - 8), '"""']


def render(draft: Draft, source: str) -> str:
    """The contract module's text, its last line the marker that `is_replaceable` reads."""
    contract = draft.contract
    imports = sorted({type(f).__name__ for f in contract.features} | {"Contract", "Target"})
    lines = [*_docstring(draft, source), "", f"from .fields import {', '.join(imports)}", ""]
    lines += ["CONTRACT = Contract("]
    if contract.identifier:
        lines.append(f"    identifier={_literal(contract.identifier)},")
    lines.append("    features=(")
    for feature in contract.features:
        if feature.name in draft.booleans:
            lines.append("        # true/false, declared as the whole numbers 1 and 0")
        lines += _layout(*_feature(feature), indent=8)
    lines.append("    ),")
    lines += [*_layout(*_target(draft), indent=4), ")", ""]
    text = "\n".join(lines)
    return text + MARKER.format(digest=_digest(text)) + "\n"


def _digest(text: str) -> str:
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()[:16]


def is_replaceable(text: str) -> bool:
    """Whether `text` is the shipped example or a written contract nobody edited since."""
    if hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest() in EXAMPLES:
        return True
    body, _, last = text.rstrip("\n").rpartition("\n")
    marked = MARKED.match(last)
    return bool(marked) and marked.group(1) == _digest(body + "\n")


def write(text: str, path: Path, force: bool = False) -> Path:
    """Write `text` to `path` whole or not at all; refuse to replace an edited contract
    unless `force`."""
    if path.is_file() and not force and not is_replaceable(path.read_text()):
        raise DataError(
            f"{path} has been edited since it was written: pass --force to replace it "
            "(commit it first to keep your edits)"
        )
    return write_text(path, text)
