"""Rule files keep their positions, so errors inside a condition point at the right line and column."""

from __future__ import annotations

from connector.ruleset.loader import load_text

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
