"""The question reference of the documentation site follows copier.yml: a section for each
question, with its help and every message of its validator (written by docs/hooks.py)."""

from __future__ import annotations

import html
import importlib.util
import re

import pytest

from docs_site import DOCS, page_html


def _load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


def test_question_reference_follows_copier_yml(site):
    _, questions = hooks.load_questions()
    text = html.unescape(re.sub(r"<[^>]+>", "", page_html(site, "questions.md").read_text()))
    text = " ".join(text.split())
    page = page_html(site, "questions.md").read_text()
    for name, question in questions.items():
        assert f'id="{name}"' in page, f"no section for {name}"
        assert " ".join(str(question.get("help", "")).split()) in text, name
        for message in hooks.validator_messages(question.get("validator", "")):
            assert message in text, f"{name}: validator message missing: {message}"
    assert "The e-mail address '<answer>' is not valid: expected name@domain.tld." in text


def test_validator_messages_are_the_branches_of_the_validator():
    validator = (
        "{% if not x %}X must not be empty.{% elif x == 'a' %}X may not be\n'{{ x }}'.{% endif %}"
    )
    assert hooks.validator_messages(validator) == [
        "X must not be empty.",
        "X may not be '<answer>'.",
    ]


def test_the_hook_refuses_a_reference_page_without_its_marker():
    page = type("Page", (), {"file": type("File", (), {"src_uri": hooks.QUESTIONS_PAGE})()})()
    with pytest.raises(hooks.PluginError):
        hooks.on_page_markdown("# Questions\n", page, None, None)
