"""mkdocs hook: the question reference is written from copier.yml at every build.

`docs/questions.md` holds the prose and the marker below; the hook replaces the marker with one
section per question (type, help, default, choices, when it is asked, what its validator
refuses), so the reference follows copier.yml without anyone editing it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import yaml
from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- questions: generated from copier.yml -->"
QUESTIONS_PAGE = "questions.md"
# Blocks of a Jinja validator: `{% if %}` / `{% elif %}` / `{% endif %}` tags, and expressions.
JINJA_TAG = re.compile(r"\{%-?.*?-?%\}", re.DOTALL)
JINJA_EXPRESSION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)


def load_questions(path: Path = ROOT / "copier.yml") -> tuple[dict, dict]:
    """(settings, questions) of a copier.yml: keys starting with `_` are settings."""
    config = yaml.safe_load(path.read_text())
    settings = {k: v for k, v in config.items() if k.startswith("_")}
    questions = {k: v for k, v in config.items() if not k.startswith("_")}
    return settings, questions


def default_answers(path: Path = ROOT / "example_project" / ".copier-answers.yml") -> dict:
    """The answers of the committed default rendering: what computed defaults come to."""
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _templated(text) -> bool:
    return isinstance(text, str) and ("{{" in text or "{%" in text)


def _prose(text) -> str:
    """Help text as Markdown: one line, and `<...>` shown rather than taken for HTML."""
    return html.escape(" ".join(str(text).split()), quote=False)


def _code(value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = " ".join(str(value).split())
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def validator_messages(validator: str) -> list[str]:
    """The messages a Jinja validator can return, with answers shown as `<answer>`."""
    messages = []
    for piece in JINJA_TAG.split(validator):
        text = JINJA_EXPRESSION.sub("<answer>", " ".join(piece.split()))
        if text:
            messages.append(text)
    return messages


def _asked_when(question: dict) -> str:
    when = question.get("when", True)
    if when is False:
        return "never: computed from the other answers"
    if _templated(when):
        return "only when " + _code(JINJA_EXPRESSION.sub(r"\1", when).strip())
    return "always"


def _choices(question: dict) -> list[str]:
    choices = question.get("choices")
    if not choices:
        return []
    if isinstance(choices, list):
        return [_code(choice) for choice in choices]
    lines = []
    for label, value in choices.items():
        shown = _code(JINJA_EXPRESSION.sub(r"\1", label)) if _templated(label) else label
        lines.append(f"{_code(value)}: {shown}")
    return lines


def question_section(name: str, question: dict, defaults: dict) -> str:
    """One question as a Markdown section: its help, then a list of its properties."""
    rows = [("Type", _code(question.get("type", "str")), [])]
    rows.append(("Asked", _asked_when(question), []))
    default = question.get("default")
    if _templated(default):
        shown = "computed: " + _code(JINJA_EXPRESSION.sub(r"\1", default).strip())
        if name in defaults:
            shown += f"; with every other default: {_code(defaults[name])}"
        rows.append(("Default", shown, []))
    elif isinstance(default, list):
        rows.append(("Default", f"{len(default)} names: " + ", ".join(map(str, default)), []))
    elif default is not None:
        rows.append(("Default", _code(default), []))
    choices = _choices(question)
    if choices:
        rows.append(("Choices", "", choices))
    if question.get("validator"):
        refusals = [html.escape(m, quote=False) for m in validator_messages(question["validator"])]
        rows.append(("Refused with", "", refusals))
    lines = [f"### `{name}`", "", _prose(question.get("help", "")), ""]
    for key, value, items in rows:
        lines.append(f"- **{key}**: {value}".rstrip())
        lines += [f"    - {item}" for item in items]
    return "\n".join(lines) + "\n"


def questions_reference(path: Path = ROOT / "copier.yml") -> str:
    """The whole generated part of the page: a summary table, then a section per question."""
    settings, questions = load_questions(path)
    defaults = default_answers()
    asked = {k: q for k, q in questions.items() if q.get("when", True) is not False}
    hidden = {k: q for k, q in questions.items() if q.get("when", True) is False}
    lines = [
        f"Copier {_code(settings.get('_min_copier_version', '?'))} or newer; answers are "
        f"recorded in {_code(settings.get('_answers_file', '.copier-answers.yml'))}.",
        "",
        "| Question | Type | Help |",
        "|---|---|---|",
    ]
    for name, question in asked.items():
        help_text = _prose(question.get("help", "")).replace("|", "&#124;")
        lines.append(f"| [`{name}`](#{name}) | {question.get('type', 'str')} | {help_text} |")
    lines += ["", "## Questions", ""]
    lines += [question_section(name, q, defaults) for name, q in asked.items()]
    if hidden:
        lines += ["## Computed values", "", "Never asked; the template derives them.", ""]
        lines += [question_section(name, q, defaults) for name, q in hidden.items()]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != QUESTIONS_PAGE:
        return markdown
    if MARKER not in markdown:
        raise PluginError(f"{QUESTIONS_PAGE} lost its marker {MARKER!r}")
    return markdown.replace(MARKER, questions_reference())
