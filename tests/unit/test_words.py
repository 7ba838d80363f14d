"""Word lists in kinds: how a rep's subject or note is read for words (whole words, inflections, any case, several
fields at once), and how a rule file that names a list it lacks is told where."""

from __future__ import annotations

import duckdb
import pytest

from connector import sql
from connector.errors import RuleError
from connector.ruleset import words
from connector.ruleset.compiler import activity_fields, load_text
from connector.ruleset.expr import ExprError, Symbol, compile_expr

LISTENING = ["hear", "ask about", "understand", "shadow", "check in", "1:1", "qbr", "what matters", "discover*"]
SELLING = ["present", "presentation", "pitch", "demo", "upsell", "negotiat*", "price", "contract"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lunch to hear about their plans", True),
        ("Heard them out on the roadmap", True),
        ("Hearing what worries them", True),
        ("Coffee - asked about what worries them", True),
        ("Coffee - asking about what worries them", True),
        ("Call to understand their goals for 2027", True),
        ("Site visit - shadowed their support team", True),
        ("Quarterly check-in", True),
        ("Check in", True),
        ("CHECK   IN with Ada", True),
        ("checkin", False),
        ("QBR Q3", True),
        ("QBRs with the board", True),
        ("1:1 with Omar", True),
        ("11:1", False),
        ("Discovery workshop", True),
        ("rehearsal", False),  # hear inside another word
        ("wheat delivery", False),
        ("", False),
    ],
)
def test_a_listening_list_reads_whole_words_and_their_inflections(text: str, expected: bool) -> None:
    assert words.matches(LISTENING, text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Upsell QBR - present premium tier", True),
        ("Presentation of the new tier", True),
        ("Presented the roadmap", True),
        ("Renewal negotiation check-in", True),
        ("Price increase needs discussion", True),
        ("Pricing call", True),
        ("1:1 on contract terms", True),
        ("Everyone present agreed on next steps", True),  # the word is the word: an admin removes it if it misleads
        ("Representative intro", False),
        ("Demos", True),
        ("Demolition site visit", False),
    ],
)
def test_a_selling_list_is_not_fooled_by_substrings(text: str, expected: bool) -> None:
    assert words.matches(SELLING, text) is expected


GENERIC = ["call", "meeting", "call with ...", "coffee with ..."]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call", True),
        ("Call with Maria", True),
        ("Call with Dr. Ana Lopez", True),  # a name of up to four words
        ("Coffee with Dana.", True),
        ("Call with Maria about the price increase", False),  # more than a name: the subject says something
        ("Call with", False),  # the placeholder stands for at least one word
        ("Meeting with Omar", False),  # only the entries listed wrap a name
    ],
)
def test_a_subject_that_only_says_who_it_was_with_reads_as_the_generic_subject(text: str, expected: bool) -> None:
    assert words.matches(GENERIC, text, whole=True) is expected


def test_an_entry_of_only_a_name_placeholder_is_refused() -> None:
    with pytest.raises(words.WordError, match="only a name placeholder"):
        words.check_entry("...")


def test_duckdb_reads_the_pattern_as_python_does() -> None:
    """The Python reading (used by tests and explain) and DuckDB's regexp_matches agree on every text above."""
    texts = ["To hear about their plans", "rehearsal", "Check-in", "QBRs", "presentation", "Presented", "1:1 x"]
    texts += ["Call with Maria", "Call with a b c d e", "call with\nMaria", "HEARD IT", "Ask About", "PrEsEnT"]
    texts += ["\u212aeep", "\u017fhadow", "D\u0130SCOVERY", "Ça va: discovery"]  # their cases do not round-trip
    texts += ["RÜCKMELDUNG", "Rückmeldung zum Piloten", "RÉUNION POUR ÉCOUTER", "STRASSE", "Straße"]
    con = duckdb.connect()
    for entries in (LISTENING, SELLING, GENERIC, ["rückmeldung", "réunion pour écouter", "STRAßE"]):
        got = con.execute(
            "SELECT regexp_matches(t, ?) FROM unnest(?::VARCHAR[]) AS u(t)", [words.pattern(entries), texts]
        ).fetchall()
        assert [bool(r[0]) for r in got] == [words.matches(entries, t) for t in texts]


def test_a_word_with_accented_letters_matches_in_either_case() -> None:
    """An admin adds words of another language: an accented capital is the same letter, as A is a; a letter without
    one capital that maps back to it ('ß', whose capital is 'SS') matches only as written."""
    assert words.matches(["rückmeldung"], "RÜCKMELDUNG zum Rollout")
    assert words.matches(["RÉUNION pour écouter"], "réunion POUR ÉCOUTER")
    assert words.matches(["straße"], "STRAßE") and not words.matches(["straße"], "STRASSE")


def _symbols() -> dict[str, Symbol]:
    return {name: Symbol(typ, sql.col(name)) for name, typ in activity_fields().items()}


def test_mentions_reads_subject_and_notes_together_and_is_never_null() -> None:
    compiled = compile_expr(
        "MENTIONS(cues, Subject, Description)", _symbols(), word_lists={"cues": ["hear", "ask about"]}
    )
    con = duckdb.connect()
    rows = [("Call", "Wanted to hear about their plans"), ("Hear them", None), (None, None), ("Call", "nothing")]
    con.execute('CREATE TABLE a ("Subject" VARCHAR, "Description" VARCHAR)')
    con.executemany("INSERT INTO a VALUES (?, ?)", rows)
    got = [r[0] for r in con.execute(f"SELECT {sql.render(compiled.expr)} FROM a").fetchall()]
    assert got == [True, True, False, False]
    assert compiled.word_lists == ["cues"]


def test_mentions_takes_one_quoted_word_too() -> None:
    compiled = compile_expr("MENTIONS('voicemail', Subject)", _symbols(), word_lists={})
    assert words.pattern(["voicemail"]) in sql.render(compiled.expr)
    assert words.matches(["voicemail"], "Left VoiceMail") and not words.matches(["voicemail"], "voicemailbox")


def test_mentions_is_only_for_activity_text() -> None:
    with pytest.raises(ExprError, match="for a kind's match"):
        compile_expr("MENTIONS('x', Subject)", _symbols(), word_lists=None)
    with pytest.raises(ExprError, match="needs a text"):
        compile_expr("MENTIONS('x', CallDurationInSeconds)", _symbols(), word_lists={})


# A ladder of two rungs over one kind: the least a rule file needs around the kinds a test is about.
LADDER_TAIL = """features:
  n:
    count: [listening]
rungs:
  - name: A
  - name: B
    requires:
      - when: n >= 1
"""

RULES = (
    """name: t
words:
  listening_cues: [hear, ask about]
  unused_list: [x]
kinds:
  listening:
    match: >-
      TaskSubtype = 'Call'
      AND MENTIONS(listenin_cues, Subject, Description)
"""
    + LADDER_TAIL
)


def test_an_unknown_word_list_is_an_error_at_its_line_with_a_suggestion() -> None:
    with pytest.raises(RuleError) as caught:
        load_text(RULES, "ladder.yaml")
    (finding,) = caught.value.findings
    assert finding.line == 9
    assert "unknown word list 'listenin_cues' (did you mean 'listening_cues'?)" in finding.message


def test_a_bad_entry_is_an_error_at_its_list() -> None:
    text = RULES.replace("listenin_cues", "listening_cues").replace("[hear, ask about]", "[hear, '*']")
    with pytest.raises(RuleError) as caught:
        load_text(text, "ladder.yaml")
    (finding,) = caught.value.findings
    assert finding.line == 3
    assert "an empty entry matches everything" in finding.message


def test_an_unused_word_list_is_a_warning() -> None:
    from connector.ruleset.lint import lint  # noqa: PLC0415

    rules = load_text(RULES.replace("listenin_cues", "listening_cues"), "ladder.yaml")
    found = [f for f in lint(rules) if "unused_list" in f.message]
    assert len(found) == 1 and found[0].line == 4 and found[0].severity == "warning"


def test_a_keep_step_that_could_push_its_day_out_of_the_record_is_an_error() -> None:
    """Held advice opens 'To stay <rung> past <day>: <keep_step>', and that much must fit 255 characters with the
    longest first name Salesforce holds."""
    from connector.ruleset.lint import lint  # noqa: PLC0415

    text = RULES.replace("listenin_cues", "listening_cues").replace("  unused_list: [x]\n", "")
    text = text.replace("features:\n", "features:\n  first_name:\n    field: FirstName\n")
    long = "call {first_name} " + "and listen closely " * 11
    ok = lint(load_text(text + "    keep_step: call {first_name}\n", "ladder.yaml"))
    assert not [f for f in ok if "keep" in f.message]
    found = [f for f in lint(load_text(text + f"    keep_step: {long}\n", "ladder.yaml")) if "keep" in f.message]
    assert len(found) == 1 and found[0].severity == "error" and "can run to" in found[0].message


def test_a_flag_step_a_held_contact_could_be_given_must_fit_after_the_drop_day_too() -> None:
    """A rung that requires no open flags is kept by closing the flag: a held contact gets the flag's next step
    after 'To stay <rung> past <day>: ', so rules check bounds it there (the flag alone would fit 255)."""
    from connector.ruleset.lint import lint  # noqa: PLC0415

    text = RULES.replace("listenin_cues", "listening_cues").replace("  unused_list: [x]\n", "")
    text += "      - when: open_flags = 0\n"
    text += "flags:\n  - id: quiet\n    label: Quiet\n    when: n = 0\n    next_step: {step}\n"
    ok = lint(load_text(text.format(step="call them"), "ladder.yaml"))
    assert not [f for f in ok if "can run to" in f.message]
    long = "call " + "and listen closely " * 12  # 233 characters: fits alone, not after the lead and the day
    found = [f for f in lint(load_text(text.format(step=long), "ladder.yaml")) if "can run to" in f.message]
    assert len(found) == 1 and found[0].severity == "error" and "next step of flag 'Quiet'" in found[0].message


def test_word_matching_is_skipped_where_the_rest_of_the_condition_is_false_with_the_same_result() -> None:
    """The regular expression runs only where the cheap part of the AND chain is not false; the value, NULLs
    included, is what plain AND gives."""
    compiled = compile_expr("NOT (TaskSubtype = 'Call' AND MENTIONS('pitch', Subject))", _symbols(), word_lists={})
    text = sql.render(compiled.expr)
    assert "CASE WHEN NOT COALESCE" in text
    con = duckdb.connect()
    con.execute('CREATE TABLE a (i INTEGER, "TaskSubtype" VARCHAR, "Subject" VARCHAR)')
    con.executemany(
        "INSERT INTO a VALUES (?, ?, ?)",
        [(0, None, "x"), (1, None, "Pitch"), (2, "Call", "pitch"), (3, "Email", "pitch"), (4, "Call", None)],
    )
    got = [r[0] for r in con.execute(f"SELECT {text} FROM a ORDER BY i").fetchall()]
    assert got == [True, None, False, True, True]
