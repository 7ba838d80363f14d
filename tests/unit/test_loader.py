"""Rule files keep their positions, so errors inside a condition point at the right line and column."""

from __future__ import annotations

import pytest

from connector.errors import RuleError
from connector.ruleset import compiler
from connector.ruleset.loader import load_text
from tests.conftest import DEFAULT_RULES

TEXT = """\
kinds:
  plain:
    match: Subject LIKE 'x' AND bad
  quoted:
    match: "Subject LIKE 'x' AND bad"
  folded:
    match: >-
      Subject LIKE 'x'
      AND bad
"""


def test_offsets_inside_plain_quoted_and_folded_scalars_map_to_file_positions() -> None:
    doc = load_text(TEXT, "r.yaml")
    offset = len("Subject LIKE 'x' AND ")
    assert (f := doc.finding(("kinds", "plain", "match"), "m", offset=offset)).line == 3 and f.col == 12 + offset
    assert (f := doc.finding(("kinds", "quoted", "match"), "m", offset=offset)).line == 5 and f.col == 13 + offset
    assert (f := doc.finding(("kinds", "folded", "match"), "m", offset=offset)).line == 9 and f.col == 11


def test_a_key_position_is_where_the_key_is_written() -> None:
    doc = load_text(TEXT, "r.yaml")
    assert doc.where(("kinds", "folded")) == (6, 3)


def test_a_rule_file_is_compiled_once_per_text_and_path_and_a_refused_one_every_time() -> None:
    """`rules check`, a dry run and `simulate` in one process share the compiled file; an edit is a new text."""
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    first = compiler.load_text(text, "ladder.yaml")
    assert compiler.load_text(text, "ladder.yaml") is first
    assert compiler.load_text(text, "other.yaml") is not first  # findings name the path
    edited = compiler.load_text(text.replace("name: default", "name: edited", 1), "ladder.yaml")
    assert edited is not first and edited.version != first.version
    for _ in range(2):
        with pytest.raises(RuleError):
            compiler.load_text(text + "\nnot_a_key: 1\n", "ladder.yaml")
