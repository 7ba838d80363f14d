"""Rule unit tests: a contact history written in YAML beside the rules, and the rung and flags it must get.

Each case runs through the real engine: the contacts and activities go into an in-memory local CRM, and the very
same passes as a sync (`sync.compute`) place them, so a test can never disagree with what a sync would write.
All cases of one file share one CRM and one pass. A failure shows what was expected, what came out, and the
`explain` trace of that contact.

Coverage counts the rungs some case expects and gets, the flags some case expects open and gets, and the kinds
some case's activities are classified as, over all rungs, flags and kinds of the rule file.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ValidationError

from connector import engine, sql
from connector.commands import explain
from connector.commands.rule_test_data import insert
from connector.commands.rule_test_report import CaseResult, Coverage, Report, render
from connector.commands.rule_test_specs import (
    DEFAULT_RULES,
    ActivitySpec,
    CaseSpec,
    ContactSpec,
    CrmSpec,
    ExpectSpec,
    RuleTestFile,
    StateSpec,
)
from connector.config import FieldsSection
from connector.crm.local.store import LocalCrm
from connector.engine.relations import CLASSIFIED, PLACE, flag_col, flag_since_col, kind_col
from connector.errors import Finding, RuleError
from connector.ruleset import compiler, loader
from connector.ruleset.compiler import RuleSet
from connector.ruleset.expr import suggest


def discover(paths: list[Path]) -> tuple[list[Path], list[Finding]]:
    """Test files: each file given, and the *.yaml / *.yml files of each folder given."""
    files: list[Path] = []
    problems: list[Finding] = []
    for p in paths:
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                problems.append(Finding(str(p), 1, 1, "no rule test files (*.yaml) in this folder"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append(Finding(str(p), 1, 1, "rule test file or folder not found"))
    return files, problems


def is_test_file(data: Any) -> bool:
    """A YAML document with `cases` and no `kinds` is a rule test file, not a rule file."""
    return isinstance(data, dict) and "cases" in data and "kinds" not in data


def run(paths: list[Path], *, rules_override: Path | None = None) -> Report:
    started = time.perf_counter()
    files, problems = discover(paths)
    report = Report(findings=problems)
    cache: dict[Path, RuleSet] = {}
    by_rules: dict[str, Coverage] = {}
    for path in files:
        try:
            spec, located, rules = load(path, rules_override=rules_override, cache=cache)
        except RuleError as exc:
            report.findings.extend(exc.findings)
            continue
        results, cov = _run_file(path, spec, located, rules)
        report.results.extend(results)
        if cov.rules_path in by_rules:
            by_rules[cov.rules_path].merge(cov)
        else:
            by_rules[cov.rules_path] = cov
    report.coverage = list(by_rules.values())
    report.seconds = time.perf_counter() - started
    return report


def load(
    path: Path,
    *,
    rules_override: Path | None = None,
    cache: dict[Path, RuleSet] | None = None,
) -> tuple[RuleTestFile, loader.Located, RuleSet]:
    """Read and check one test file, and the rule file it tests; every problem as a located finding."""
    located = loader.load_file(path)
    try:
        spec = RuleTestFile.model_validate(located.data)
    except ValidationError as exc:
        findings = []
        for err in exc.errors():
            loc = _data_loc(located.data, err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                key = str(err["loc"][-1])
                msg = f"unknown key '{key}'{suggest(key, _known_keys(err['loc']))}"
            elif err["type"] == "missing":
                msg = f"'{err['loc'][-1]}' is required here"
            findings.append(located.finding(loc, msg))
        raise RuleError(findings) from None
    rules_path = rules_override or Path(os.path.normpath(path.parent / spec.rules))
    cache = cache if cache is not None else {}
    resolved = rules_path.resolve()
    if resolved not in cache:
        try:
            cache[resolved] = compiler.load(rules_path)
        except RuleError as exc:
            if not rules_path.exists():
                raise RuleError([located.finding(("rules",), f"rule file {rules_path} not found")]) from None
            raise RuleError(exc.findings) from None
    rules = cache[resolved]
    findings = _check_names(spec, located, rules)
    if findings:
        raise RuleError(sorted(findings, key=lambda f: (f.line, f.col)))
    return spec, located, rules


_MODELS: dict[str, type[BaseModel]] = {
    "cases": CaseSpec,
    "contact": ContactSpec,
    "activities": ActivitySpec,
    "crm": CrmSpec,
    "state": StateSpec,
    "expect": ExpectSpec,
}


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Keys the mapping holding `loc`'s last key may have, for a 'did you mean'."""
    model: type[BaseModel] = RuleTestFile
    for part in loc[:-1]:
        if isinstance(part, str) and part in _MODELS:
            model = _MODELS[part]
    return list(model.model_fields)


def _data_loc(data: Any, loc: tuple[int | str, ...]) -> loader.Loc:
    """The part of pydantic's error location that exists in the file (it adds union members and validators)."""
    out: list[int | str] = []
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            continue
        out.append(part)
    return tuple(out)


def _check_names(spec: RuleTestFile, located: loader.Located, rules: RuleSet) -> list[Finding]:
    rungs = [r.name for r in rules.rungs]
    flags = {f.id for f in rules.flags} | {f.label for f in rules.flags}
    findings: list[Finding] = []

    def need(value: str | None, known: list[str] | set[str], loc: loader.Loc, what: str) -> None:
        if value is not None and value not in known:
            findings.append(located.finding(loc, f"unknown {what} '{value}'{suggest(value, known)} in {rules.path}"))

    seen: dict[str, int] = {}
    for i, case in enumerate(spec.cases):
        loc: loader.Loc = ("cases", i)
        if case.name in seen:
            findings.append(
                located.finding(
                    (*loc, "name"), f"duplicate case name '{case.name}' (case {seen[case.name] + 1} has it)"
                )
            )
        seen[case.name] = i
        need(case.expect.rung, rungs, (*loc, "expect", "rung"), "rung")
        need(case.expect.qualifies, rungs, (*loc, "expect", "qualifies"), "rung")
        for j, flag in enumerate(case.expect.flags or []):
            need(flag, flags, (*loc, "expect", "flags", j), "flag")
        for j, act in enumerate(case.activities):
            hint = act.kind_hint
            for k, kind in enumerate(act.hints):
                kloc: loader.Loc = (*loc, "activities", j, "kind_hint") + ((k,) if isinstance(hint, list) else ())
                need(kind, list(rules.kinds), kloc, "kind")
            for k, kind in enumerate(act.not_kinds):
                nloc: loader.Loc = (*loc, "activities", j, "not_kind") + (
                    (k,) if isinstance(act.not_kind, list) else ()
                )
                need(kind, list(rules.kinds), nloc, "kind")
        if case.crm is not None:
            need(case.crm.Trust_Stage__c, rungs, (*loc, "crm", "Trust_Stage__c"), "rung")
        if case.state is not None:
            findings.append(
                located.finding(
                    (*loc, "state"),
                    "`state` is no longer read: a demotion grace runs from the contact's own history. Give the "
                    "activities that met the rung it is held on (with days_ago), and drop `state`",
                )
            )
    return findings


# -- running ---------------------------------------------------------------------------------------------------


def _run_file(
    path: Path,
    spec: RuleTestFile,
    located: loader.Located,
    rules: RuleSet,
) -> tuple[list[CaseResult], Coverage]:
    as_of = spec.as_of or dt.date.today()
    crm = LocalCrm.create(None)
    try:
        con = crm.con
        contacts, activities = insert(con, spec, as_of)
        crm.prepare(FieldsSection())
        engine.compute(con, rules, as_of)
        place = _place(con, rules)
        kinds_of = _kinds(con, rules)
        results: list[CaseResult] = []
        cov = Coverage(
            rules.path,
            rules.version,
            dict.fromkeys((r.name for r in rules.rungs), False),
            dict.fromkeys((f.id for f in rules.flags), False),
            dict.fromkeys(rules.kinds, False),
        )
        for kinds in kinds_of.values():
            for k in kinds:
                cov.kinds[k] = True
        for i, (case, cid) in enumerate(zip(spec.cases, contacts, strict=True)):
            got = place[cid]
            problems = _compare(case, got, rules)
            problems += _hint_problems(case, cid, activities[i], kinds_of, located, i)
            if case.expect.rung is not None and got["rung"] == case.expect.rung:
                cov.rungs[case.expect.rung] = True
            for f in _flag_ids(case.expect.flags or [], rules):
                if f in got["flags"]:
                    cov.flags[f] = True
            results.append(CaseResult(str(path), case.name, located.where(("cases", i))[0], not problems, problems))
        for i, result in enumerate(results):
            if not result.passed:
                e = explain.explain(con, rules, contacts[i], as_of)
                result.trace = explain.render(e)
    finally:
        crm.close()
    return results, cov


def _place(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, dict[str, Any]]:
    tree = sql.select(
        *(sql.col(c) for c in ("cid", "new_stage", "qualified", "new_next", "new_since", "held_until")),
        *(sql.col(flag_col(f.id)) for f in rules.flags),
        *(sql.col(flag_since_col(f.id)) for f in rules.flags),
        from_=PLACE.name,
    )
    rows = sql.run(con, tree).fetchall()
    out = {}
    n = len(rules.flags)
    for cid, stage, qualified, next_step, since, held_until, *rest in rows:
        flags, opened = rest[:n], rest[n:]
        out[cid] = {
            "rung": stage,
            "qualifies": rules.rungs[qualified].name,
            "next_step": next_step,
            "since": since,
            "held_until": held_until,
            "flags": [f.id for f, on in zip(rules.flags, flags, strict=True) if on],
            "flag_since": {f.id: day for f, day in zip(rules.flags, opened, strict=True) if day is not None},
        }
    return out


def _kinds(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[tuple[str, str], list[str]]:
    """The kinds of each classified activity for each contact it is credited to: a shared activity can be of other
    kinds for each of them (a meeting for those who came, nothing for one who declined). Activities of no kind, or
    dated after as_of, are not there."""
    tree = sql.select(
        sql.col("aid"), sql.col("cid"), *(sql.col(kind_col(k)) for k in rules.kinds), from_=CLASSIFIED.name
    )
    out: dict[tuple[str, str], list[str]] = {}
    for aid, cid, *flags in sql.run(con, tree).fetchall():
        out[(aid, cid)] = [k for k, on in zip(rules.kinds, flags, strict=True) if on]
    return out


def _flag_ids(names: list[str], rules: RuleSet) -> list[str]:
    by_label = {f.label: f.id for f in rules.flags}
    return [by_label.get(n, n) for n in names]


def _flags_shown(ids: list[str], rules: RuleSet) -> str:
    """Flags as users see them on the contact (the rule file's label), the key in brackets for the admin who edits
    the file: '[Missing thank-you (missing_thank_you)]'; '[none]' for no flag."""
    label = {f.id: f.label for f in rules.flags}
    shown = [f"{label[i]} ({i})" if i in label else i for i in ids]
    return f"[{', '.join(shown) or 'none'}]"


def _compare(case: CaseSpec, got: dict[str, Any], rules: RuleSet) -> list[str]:
    want = case.expect
    problems: list[str] = []
    if want.rung is not None and got["rung"] != want.rung:
        problems.append(f"rung: expected {want.rung}, got {got['rung']}")
    if want.qualifies is not None and got["qualifies"] != want.qualifies:
        problems.append(f"qualifies: expected {want.qualifies}, got {got['qualifies']}")
    if want.flags is not None:
        expected = sorted(set(_flag_ids(want.flags, rules)))
        if expected != sorted(got["flags"]):
            problems.append(
                f"flags: expected {_flags_shown(expected, rules)}, got {_flags_shown(sorted(got['flags']), rules)}"
            )
    if want.next_step is not None and got["next_step"] != want.next_step:
        problems.append(f"next_step: expected {want.next_step!r}, got {got['next_step']!r}")
    if want.next_step_contains is not None and want.next_step_contains not in (got["next_step"] or ""):
        problems.append(f"next_step: expected it to contain {want.next_step_contains!r}, got {got['next_step']!r}")
    if want.since is not None and got["since"] != want.since:
        problems.append(f"since: expected {want.since}, got {got['since']}")
    if want.held_until is not None:
        expected_hold = None if want.held_until == "none" else want.held_until
        if got["held_until"] != expected_hold:
            problems.append(f"held_until: expected {want.held_until}, got {got['held_until'] or 'none (not held)'}")
    for name, day in (want.flag_since or {}).items():
        ids = _flag_ids([name], rules)
        opened = got["flag_since"].get(ids[0]) if ids else None
        if opened != day:
            shown = _flags_shown(ids, rules)[1:-1] if ids else name
            problems.append(f"flag_since {shown}: expected {day}, got {opened or 'not open'}")
    return problems


def _hint_problems(
    case: CaseSpec,
    cid: str,
    aids: list[str],
    kinds_of: dict[tuple[str, str], list[str]],
    located: loader.Located,
    index: int,
) -> list[str]:
    """Each activity's kind_hint against its classification for the case's own contact, not for another contact
    it is shared with."""
    problems: list[str] = []
    who = " ".join(n for n in (case.contact.FirstName, case.contact.LastName) if n)
    for j, (act, aid) in enumerate(zip(case.activities, aids, strict=True)):
        kinds = kinds_of.get((aid, cid), [])
        missing = [k for k in act.hints if k not in kinds]
        wrong = [k for k in act.not_kinds if k in kinds]
        line = located.where(("cases", index, "activities", j))[0]
        actual = ", ".join(kinds) or "no kind (or dated after as_of)"
        if missing:
            problems.append(
                f"activity {j + 1} (line {line}): kind_hint {', '.join(missing)}, but for this case's contact "
                f"({who}) it is classified as {actual}"
            )
        if wrong:
            problems.append(
                f"activity {j + 1} (line {line}): not_kind {', '.join(wrong)}, but for this case's contact "
                f"({who}) it is classified as {actual}"
            )
    return problems


# The schema and the report live in sibling modules; their names stay importable from here.
__all__ = [
    "DEFAULT_RULES",
    "ActivitySpec",
    "CaseResult",
    "CaseSpec",
    "ContactSpec",
    "Coverage",
    "CrmSpec",
    "ExpectSpec",
    "Report",
    "RuleTestFile",
    "StateSpec",
    "discover",
    "is_test_file",
    "load",
    "render",
    "run",
]
