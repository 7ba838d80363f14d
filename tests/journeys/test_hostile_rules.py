"""Property-based: whatever names, labels, numbers and templates a rule file holds, it is either refused with
file:line:col or it runs, and a name never changes what the engine computes (issue 9).

Each example goes through the library entry points a sync uses: `compiler.load_text` (what `rules check` compiles)
and `sync.run(dry_run=True)` on a small demo org already synced with the default rules. A crash (what the CLI would
report as exit 70) fails the example, and so does a file that compiles and then fails the dry run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.commands.rulefile import check_picklists
from connector.crm.local.store import LocalCrm
from connector.errors import RuleError
from connector.ruleset import compiler
from tests.conftest import DEFAULT_RULES, Org
from tests.mutator import ENGINE_NAMES, HOSTILE_TEXTS

BASE: dict[str, Any] = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
EXAMPLES = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Placement:
    per_rung: dict[str, int]
    flags: dict[str, int]
    planned: int


@pytest.fixture(scope="module")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    org = Org(tmp_path_factory.mktemp("org"))
    LocalCrm.create(org.database).close()
    org.load_demo(60, seed=5)
    org.sync()
    return org


@pytest.fixture(scope="module")
def baseline(demo_org: Org) -> Placement:
    result = demo_org.sync(dry_run=True)
    assert result.planned_records == 0
    return Placement(result.per_rung, result.flags, result.planned_records)


def outcome(org: Org, data: Any | str) -> Placement | None:
    """None when the file is refused as `rules check` refuses it (every finding located in it); else the dry run's
    placement. Any other exception, or a RuleError from the dry run of a file that passed, fails the example."""
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10**6)
    path = org.folder / "mutant.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        rules = compiler.load_text(text, str(path))
        crm = LocalCrm.open(org.database)
        try:
            check_picklists(rules, crm.picklist_values(), org.config.fields)  # the check against the CRM
        finally:
            crm.close()
    except RuleError as exc:
        findings = exc.findings
    else:
        findings = []
    if findings:
        for f in findings:
            assert (f.path, f.line >= 1, f.col >= 1) == (str(path), True, True), str(f)
        return None
    before = org.snapshot()
    result = org.sync(dry_run=True, rules=path)  # a RuleError here: it passed the check and failed the sync
    assert org.snapshot() == before, "a dry run wrote to the CRM"
    return Placement(result.per_rung, result.flags, result.planned_records)


@contextmanager
def picklist_with(org: Org, field: str, value: str) -> Iterator[None]:
    """The CRM's picklist `field` also holds `value` (as after `fields deploy`), for the length of the block."""
    crm = LocalCrm.open(org.database)
    try:
        values = crm.picklist_values()[field]
        crm.set_picklist(field, [*values, value])
    finally:
        crm.close()
    try:
        yield
    finally:
        crm = LocalCrm.open(org.database)
        try:
            crm.set_picklist(field, values)
        finally:
            crm.close()


def renamed(old: str, new: str) -> Any:
    """The default rules with the name `old` replaced by `new` wherever it is a name: keys, kind lists, conditions
    and template placeholders; prose (says, description, means) keeps its words, so the texts written stay the same."""
    word = re.compile(rf"(?<![\w.'%]){re.escape(old)}(?![\w'%])")
    placeholder = re.compile(rf"\{{{re.escape(old)}(?=[.|}}])")

    def walk(v: Any, key: Any = None) -> Any:
        if isinstance(v, dict):
            return {(new if k == old else k): walk(x, k) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, key) for x in v]
        if isinstance(v, str):
            if v == old:
                return new
            if key in ("when", "match", "expr"):
                return word.sub(lambda _m: new, v)
            if key in ("next_step", "top_next_step"):
                return placeholder.sub(lambda _m: "{" + new, v)
        return v

    return walk(BASE)


def edited(change: Callable[[Any], None]) -> Any:
    data = yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))
    change(data)
    return data


IDENTIFIERS = st.sampled_from(ENGINE_NAMES) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
NAMES = IDENTIFIERS | st.text(min_size=0, max_size=40) | st.sampled_from(HOSTILE_TEXTS)


@EXAMPLES
@given(name=NAMES)
def test_a_feature_under_any_name_is_refused_or_places_everyone_as_before(
    demo_org: Org, baseline: Placement, name: str
) -> None:
    got = outcome(demo_org, renamed("conversations_180d", name))
    assert got is None or got == baseline, name


@EXAMPLES
@given(name=NAMES)
def test_a_kind_under_any_name_is_refused_or_places_everyone_as_before(
    demo_org: Org, baseline: Placement, name: str
) -> None:
    got = outcome(demo_org, renamed("meeting", name))
    assert got is None or got == baseline, name


def test_the_engine_names_of_issue_9_are_each_refused_or_isolated(demo_org: Org, baseline: Placement) -> None:
    olds = ("conversations_180d", "listening_90d", "unthanked", "meeting", "listening")
    for i, name in enumerate(ENGINE_NAMES):
        old = olds[i % len(olds)]
        got = outcome(demo_org, renamed(old, name))
        assert got is None or got == baseline, (old, name)


@EXAMPLES
@given(label=st.sampled_from(HOSTILE_TEXTS) | st.text(min_size=1, max_size=60))
def test_a_rung_named_anything_is_a_value_never_sql(demo_org: Org, baseline: Placement, label: str) -> None:
    def rename(data: Any) -> None:
        data["rungs"][1]["name"] = label

    with picklist_with(demo_org, "Trust_Stage__c", label):
        got = outcome(demo_org, edited(rename))
    if got is not None:
        assert {("Friend" if k == label else k): n for k, n in got.per_rung.items()} == baseline.per_rung
        assert got.flags == baseline.flags


@EXAMPLES
@given(label=st.sampled_from(HOSTILE_TEXTS) | st.text(min_size=1, max_size=60))
def test_a_flag_labelled_anything_is_a_value_never_sql(demo_org: Org, baseline: Placement, label: str) -> None:
    def relabel(data: Any) -> None:
        data["flags"][1]["label"] = label

    with picklist_with(demo_org, "Trust_Flags__c", label):
        got = outcome(demo_org, edited(relabel))
    if got is not None:
        assert got.per_rung == baseline.per_rung
        assert {("Missing listening" if k == label else k): n for k, n in got.flags.items()} == baseline.flags


def test_sql_in_a_rung_name_reaches_the_crm_as_text(demo_org: Org) -> None:
    hostile = "Friend' || read_text('/etc/passwd') || '"
    path = demo_org.folder / "hostile.yaml"
    path.write_text(DEFAULT_RULES.read_text().replace("- name: Friend", f'- name: "{hostile}"'))
    with picklist_with(demo_org, "Trust_Stage__c", hostile):
        result = demo_org.sync(dry_run=True, rules=path)
    values = [str(c.new) for c in result.sample]
    assert any(hostile in v for v in values)
    assert not any("root:" in v for v in values)


EDGE = (
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31,
            2**31 - 1,
            2**53,
            2**53 + 1,
            2**63,
            -(2**63),
            10**30,
            1e308,
            -1e308,
            float("inf"),
            float("-inf"),
            float("nan"),
            0.5,
            -0.0,
            1e-320,
        ]
    )
    | st.integers()
    | st.floats()
)
RAW_EDGE = st.sampled_from(["1e999", "-1e999", "9" * 5000, "-" + "9" * 5000, ".nan", "0x7fffffff", "1_000"])


@EXAMPLES
@given(value=EDGE, where=st.sampled_from(["grace", "decay", "window", "periods", "older"]))
def test_numbers_at_the_edges_are_refused_or_run(demo_org: Org, value: float, where: str) -> None:
    def put(data: Any) -> None:
        target = {
            "grace": (data["ladder"], "demotion_grace_days"),
            "decay": (data["ladder"], "decay_every_days"),
            "window": (data["features"]["conversations_180d"], "within_days"),
            "periods": (data["features"]["two_way_quarters"], "periods"),
            "older": (data["features"]["unthanked"], "older_than_days"),
        }[where]
        target[0][target[1]] = value

    outcome(demo_org, edited(put))


@EXAMPLES
@given(value=EDGE.map(repr) | RAW_EDGE, op=st.sampled_from([">=", "=", "<", "*", "/", "%", "-"]))
def test_numbers_at_the_edges_in_conditions_are_refused_or_run(demo_org: Org, value: str, op: str) -> None:
    condition = f"conversations_180d {op} {value} >= 1" if op in "*/%-" else f"conversations_180d {op} {value}"
    text = DEFAULT_RULES.read_text().replace("when: conversations_180d >= 1\n", f'when: "{condition}"\n')
    outcome(demo_org, text)


@EXAMPLES
@given(raw=RAW_EDGE, key=st.sampled_from(["demotion_grace_days: 30", "within_days: 180", "periods: 3"]))
def test_numbers_the_yaml_parser_sees_first_are_refused_or_run(demo_org: Org, raw: str, key: str) -> None:
    name = key.split(":", 1)[0]
    outcome(demo_org, DEFAULT_RULES.read_text().replace(key, f"{name}: {raw}", 1))


TEMPLATES = st.text(alphabet=st.sampled_from("{}|.:!x_ 'first_name"), max_size=30) | st.sampled_from(
    [
        "{",
        "}",
        "{}",
        "{{first_name}}",
        "{nope}",
        "{first_name.subject}",
        "{unthanked.date.x}",
        "{first_name|{x}}",
        "{0}",
        "{__class__}",
        "{first_name!r}",
        "{first_name:>99999}",
        "{" * 500,
        "{first_name|}",
        "{|x}",
    ]
)


@EXAMPLES
@given(template=TEMPLATES, where=st.sampled_from(["rung", "flag", "top"]))
def test_templates_with_braces_are_refused_or_run(demo_org: Org, template: str, where: str) -> None:
    def put(data: Any) -> None:
        if where == "rung":
            data["rungs"][1]["next_step"] = template
        elif where == "flag":
            data["flags"][0]["next_step"] = template
        else:
            data["ladder"]["top_next_step"] = template

    outcome(demo_org, edited(put))
