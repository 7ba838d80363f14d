"""A rule file is untrusted input (issue 9): whatever it holds, loading it ends in a located RuleError or in data,
quickly and in little memory; never in a crash, a hang or an object built from a tag."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.errors import Finding, RuleError
from connector.ruleset import _compose, loader

ROOT = Path(__file__).resolve().parents[2]
LADDER = (ROOT / "rules" / "ladder.yaml").read_text(encoding="utf-8")

PARSERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])


@pytest.fixture(params=PARSERS, ids=lambda p: p.__name__)
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """libyaml's parser is used when PyYAML has it; the pure-Python one otherwise. Both must behave the same."""
    monkeypatch.setattr(_compose, "_PARSER", request.param)
    return request.param  # type: ignore[no-any-return]


def _refused(text: str) -> list[str]:
    with pytest.raises(RuleError) as info:
        loader.load_text(text, "r.yaml")
    return [str(f) for f in info.value.findings]


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            BILLION_LAUGHS, "r.yaml:5:8: error: aliases (*name) copy in more than 10,000 values", id="alias-bomb"
        ),
        pytest.param(
            "a: &a [1, *a]\n",
            "r.yaml:1:11: error: the alias *a stands inside the value anchored as &a",
            id="recursive-alias",
        ),
        pytest.param("a: &a {b: {c: *a}}\n", "r.yaml:1:15: error: the alias *a stands inside", id="recursive-in-map"),
        pytest.param(
            "a: *nowhere\n",
            "r.yaml:1:4: error: the alias *nowhere has no anchor &nowhere before it",
            id="undefined-alias",
        ),
        pytest.param(
            "a: !!python/object/apply:os.system [ls]\n",
            "r.yaml:1:4: error: YAML tags such as '!!python/object/apply:os.system' are not allowed",
            id="python-tag",
        ),
        pytest.param("name: !!str 3\n", "r.yaml:1:7: error: YAML tags such as '!!str' are not allowed", id="str-tag"),
        pytest.param(
            "a: !mine {b: 1}\n", "r.yaml:1:4: error: YAML tags such as '!mine' are not allowed", id="local-tag"
        ),
        pytest.param(
            "a: 1\nb: x\x00y\n", "r.yaml:2:5: error: the file holds a control character (U+0000, NUL)", id="nul-byte"
        ),
        pytest.param(
            "a: \x1b[31mred\n", "r.yaml:1:4: error: the file holds a control character (U+001B, ESC)", id="escape-byte"
        ),
        pytest.param("a: 1\x85\n", "r.yaml:1:5: error: the file holds a control character (U+0085, NEL)", id="c1"),
        pytest.param(
            "a: Friend\u202e\n", "r.yaml:1:10: error: the file holds an invisible text-direction control", id="bidi"
        ),
        pytest.param(
            'a: "x\\0y"\n', "r.yaml:1:4: error: this text holds a control character (U+0000, NUL)", id="nul-escape"
        ),
        pytest.param(
            '"k\\x07": 1\n', "r.yaml:1:1: error: this text holds a control character (U+0007)", id="bell-in-key"
        ),
        pytest.param(
            "since: 2024-02-30\n",
            "r.yaml:1:8: error: '2024-02-30' reads as a date but is not a valid one",
            id="impossible-date",
        ),
        pytest.param("n: " + "7" * 5000 + "\n", "r.yaml:1:4: error: '77777", id="5000-digit-integer"),
        pytest.param("a: " + "[" * 70 + "]" * 70 + "\n", "error: nested more than 64 levels deep", id="deep"),
        pytest.param("a: 1\n---\nb: 2\n", "r.yaml:2:1: error: a rule file holds one YAML document", id="two-docs"),
        pytest.param(
            "a: 1\nb: 2\na: 3\n",
            "r.yaml:3:1: error: duplicate key 'a': it is already defined at line 1",
            id="duplicate-key",
        ),
        pytest.param("? [a, b]\n: 1\n", "r.yaml:1:3: error: a key must be plain text", id="list-key"),
        pytest.param("# nothing\n", "r.yaml:1:1: error: the rule file is empty", id="empty"),
        pytest.param("a: [1,\n", "error: not valid YAML", id="syntax"),
        pytest.param(
            "x" * (loader.MAX_BYTES + 1), "r.yaml:1:1: error: the rule file is larger than 1 MiB", id="too-large"
        ),
    ],
)
def test_untrusted_text_is_a_located_rule_error(parser: type, text: str, expected: str) -> None:
    findings = _refused(text)
    assert any(expected in f for f in findings), findings


def test_the_alias_budget_stops_a_billion_laughs_after_a_few_thousand_values(parser: type) -> None:
    """Nine levels of nine aliases would be 387 million values; the budget stops reading long before."""
    composer = _compose.Composer("r.yaml")
    with pytest.raises(_compose.Stop):
        composer.compose(BILLION_LAUGHS)
    assert composer.values <= 2 * _compose.MAX_ALIAS_VALUES
    assert len(composer.positions) <= 4 * _compose.MAX_ALIAS_VALUES


def test_every_problem_that_does_not_stop_reading_is_reported_at_once(parser: type) -> None:
    findings = _refused('a: !!str x\nb: 1\nb: 2\nc: "\\x01"\n')
    assert [f.split(": error")[0] for f in findings] == ["r.yaml:1:4", "r.yaml:3:1", "r.yaml:4:4"]


def test_a_few_aliases_still_work_and_keep_the_anchors_positions(parser: type) -> None:
    doc = loader.load_text("base: &b {match: \"Subject = 'x'\"}\nother: *b\nlist: [*b, 2]\n", "r.yaml")
    assert doc.data == {
        "base": {"match": "Subject = 'x'"},
        "other": {"match": "Subject = 'x'"},
        "list": [{"match": "Subject = 'x'"}, 2],
    }
    assert doc.where(("other",)) == (2, 1)  # where the alias is written
    assert doc.where(("other", "match")) == (1, 11)  # what it copies keeps the anchor's position
    assert doc.where(("list", 0)) == (3, 8)
    offset = len("Subject = ")
    assert doc.finding(("list", 0, "match"), "m", offset=offset).col == 19 + offset  # past the quote


def test_positions_and_styles_match_between_parsers(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    for parser in PARSERS:
        monkeypatch.setattr(_compose, "_PARSER", parser)
        doc = loader.load_text(LADDER, "ladder.yaml")
        seen.append((doc.data, doc.positions, doc.styles))
    assert all(s == seen[0] for s in seen)


# -- files --------------------------------------------------------------------------------------------------------


def _refused_file(path: Path) -> str:
    with pytest.raises(RuleError) as info:
        loader.load_file(path)
    (finding,) = info.value.findings
    return str(finding)


def test_a_folder_is_not_a_rule_file(tmp_path: Path) -> None:
    assert _refused_file(tmp_path) == f"{tmp_path}:1:1: error: this is a folder, not a rule file: name the file itself"


def test_a_missing_rule_file(tmp_path: Path) -> None:
    assert "rule file not found: check the path" in _refused_file(tmp_path / "nope.yaml")


def test_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    assert "a symbolic link that leads back to itself" in _refused_file(tmp_path / "a.yaml")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_dev_zero_is_refused_without_reading_it() -> None:
    assert "not a regular file (a device, pipe or socket)" in _refused_file(Path("/dev/zero"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_with_no_writer_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    assert "not a regular file" in _refused_file(tmp_path / "pipe.yaml")


def test_a_file_over_the_limit_is_refused_after_reading_at_most_one_byte_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: " + b"x" * (3 * loader.MAX_BYTES))
    asked: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", counting_read)
    assert "the rule file is larger than 1 MiB" in _refused_file(path)
    assert sum(asked) == loader.MAX_BYTES + 1


def test_latin1_bytes_are_located(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes("name: x\nmeans: café\n".encode("latin-1"))
    assert _refused_file(path) == (
        f"{path}:2:11: error: not UTF-8 text: the byte 0xE9 here cannot be read; save the rule file as UTF-8"
    )


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may run as root, who reads anything: the refusal is simulated where the file is opened."""
    path = tmp_path / "r.yaml"
    path.write_text("a: 1\n")

    def refuse(*_args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    assert "cannot read the rule file: permission denied" in _refused_file(path)


def test_a_readable_file_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(LADDER, encoding="utf-8")
    path.chmod(stat.S_IRUSR)
    assert loader.load_file(path).data["name"]


# -- properties ---------------------------------------------------------------------------------------------------

_FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_YAML_BITS = st.sampled_from(
    [
        "&a ",
        "*a",
        "!!python/name:os.system ",
        "!x ",
        "[",
        "]",
        "{",
        "}",
        ": ",
        "- ",
        "\n",
        "  ",
        "'",
        '"',
        "\\0",
        "\x00",
        "\x85",
        "\u202e",
        "---\n",
        "? ",
        "|\n",
        "<<: ",
        "#",
        "1e999",
        "9" * 40,
        "2024-13-45",
        "~",
        "%TAG ! x\n",
        "\t",
        "\r",
    ]
)


def _outcome(load: Callable[[], loader.Located]) -> loader.Located | list[Finding]:
    """What loading gives: the data, or the findings of the RuleError (never empty). Anything else escapes."""
    try:
        return load()
    except RuleError as exc:
        findings = exc.findings
    assert findings, "a RuleError without a finding"
    return findings


@_FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_load_or_raise_a_rule_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "r.yaml"
    path.write_bytes(data)
    outcome = _outcome(lambda: loader.load_file(path))
    if isinstance(outcome, list):
        assert all(f.line >= 1 and f.col >= 1 and f.message for f in outcome)


@_FUZZ
@given(
    st.lists(
        st.tuples(st.integers(0, len(LADDER)), st.integers(0, 40), _YAML_BITS | st.text(max_size=8)),
        min_size=1,
        max_size=6,
    )
)
def test_mutations_of_the_shipped_ladder_load_or_raise_a_rule_error(edits: list[tuple[int, int, str]]) -> None:
    """Splice YAML's special characters, tags, anchors and control characters anywhere into the real rule file."""
    text = LADDER
    for offset, cut, insert in edits:
        at = min(offset, len(text))
        text = text[:at] + insert + text[at + cut :]
    outcome = _outcome(lambda: loader.load_text(text, "r.yaml"))
    if isinstance(outcome, loader.Located):
        for line, col in outcome.positions.values():
            assert 1 <= line <= text.count("\n") + 2 and col >= 1
