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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector import engine, ids, vocabulary
from connector.commands import explain
from connector.config import FieldsSection
from connector.crm.local.store import LocalCrm
from connector.engine import sql
from connector.engine.relations import CLASSIFIED, PLACE, flag_col, kind_col
from connector.engine.watch import WatchRow
from connector.errors import Finding, RuleError
from connector.ruleset import compiler, loader
from connector.ruleset.compiler import RuleSet
from connector.ruleset.expr import suggest

DEFAULT_RULES = "../ladder.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActivitySpec(_Strict):
    """One logged Task or Event of the case's contact, dated `days_ago` before as_of (or on `date`): its
    ActivityDate, the day it happened. Beside the Salesforce fields it can say what Salesforce records elsewhere:
    `incoming` (an EmailMessage of that direction; `answers_ours`: it replies to one of ours), `with` (the
    contacts of other cases of the file who took part too) or `attendees` (that many more people), `declined`
    (this contact declined the Event), `private` (IsPrivate), `logged_days_ago` (when it was logged: CreatedDate,
    and for a Task its CompletedDateTime). A cancelled meeting is a subject: "Canceled: ..."."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    days_ago: int | None = None
    date: dt.date | None = None
    kind_hint: str | list[str] | None = None  # the kinds it is meant to be; the case fails when it is not
    object: Literal["Task", "Event"] = "Task"
    incoming: bool | None = None
    answers_ours: bool | None = None
    with_: list[str] = Field(default_factory=list, alias="with")
    attendees: int | None = Field(default=None, ge=0, le=1000)  # more people (new contacts) on the activity
    declined: bool = False
    private: bool | None = None
    logged_days_ago: int | None = Field(default=None, ge=0)
    IsPrivate: bool | None = None
    Subject: str | None = None
    Type: str | None = None
    Status: str | None = None
    Priority: str | None = None
    TaskSubtype: str | None = None
    EventSubtype: str | None = None
    CallType: str | None = None
    CallDurationInSeconds: int | None = None
    CallDisposition: str | None = None
    DurationInMinutes: int | None = None
    IsAllDayEvent: bool | None = None
    IsClosed: bool | None = None
    WhatId: str | None = None
    OwnerId: str | None = None
    AccountId: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ActivitySpec:
        if (self.days_ago is None) == (self.date is None):
            raise ValueError("give exactly one of days_ago or date")
        have = set(vocabulary.column_names(self.object))
        wrong = sorted(k for k in self.model_fields_set if k[0].isupper() and k not in have)
        if wrong:
            raise ValueError(f"{self.object} has no field {', '.join(wrong)}")
        if self.object == "Event" and self.incoming is not None:
            raise ValueError("incoming is an email's direction: give it on a Task")
        if self.answers_ours and not self.incoming:
            raise ValueError("answers_ours needs incoming: true (only their email answers ours)")
        if self.declined and self.object != "Event":
            raise ValueError("declined is an Event invitation's answer: give it on an Event")
        if self.private is not None and self.object != "Event":
            raise ValueError("private is an Event's: give it on an Event")
        return self

    @property
    def hints(self) -> list[str]:
        if self.kind_hint is None:
            return []
        return [self.kind_hint] if isinstance(self.kind_hint, str) else list(self.kind_hint)

    def fields(self) -> dict[str, Any]:
        """The Salesforce fields given, by API name."""
        out = {k: getattr(self, k) for k in sorted(self.model_fields_set) if k[0].isupper()}
        if self.private is not None:
            out["IsPrivate"] = self.private
        return out


class ContactSpec(_Strict):
    """The case's contact. Its CreatedDate is `known_for_days` before as_of (default 100) unless given."""

    FirstName: str | None = "Alex"  # null: a contact without a first name, as Salesforce allows
    LastName: str = "Tester"
    known_for_days: int | None = Field(default=None, ge=0)
    CreatedDate: dt.datetime | dt.date | None = None
    Email: str | None = None
    Title: str | None = None
    AccountId: str | None = None
    OwnerId: str | None = None
    LeadSource: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ContactSpec:
        if self.known_for_days is not None and self.CreatedDate is not None:
            raise ValueError("give known_for_days or CreatedDate, not both")
        return self


class CrmSpec(_Strict):
    """What the CRM shows today, before this sync."""

    Trust_Stage__c: str | None = None
    Trust_Stage_Since__c: dt.date | None = None


class StateSpec(_Strict):
    """The demotion watch a previous sync left: since when the contact stopped meeting `demotion_from`."""

    demotion_from: str
    failing_since: dt.date | None = None
    failing_for_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> StateSpec:
        if (self.failing_since is None) == (self.failing_for_days is None):
            raise ValueError("give exactly one of failing_since or failing_for_days")
        return self


class ExpectSpec(_Strict):
    rung: str | None = None
    qualifies: str | None = None  # the rung it meets today, before the demotion grace holds it higher
    flags: list[str] | None = None  # ids or labels; exactly these are open
    next_step: str | None = None
    next_step_contains: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ExpectSpec:
        if not self.model_fields_set:
            raise ValueError("expect at least one of rung, qualifies, flags, next_step, next_step_contains")
        return self


class CaseSpec(_Strict):
    name: str = Field(min_length=1)
    contact: ContactSpec = Field(default_factory=ContactSpec)
    activities: list[ActivitySpec] = Field(default_factory=list)
    crm: CrmSpec | None = None
    state: StateSpec | None = None
    expect: ExpectSpec


class RuleTestFile(_Strict):
    rules: str = DEFAULT_RULES  # relative to this file
    as_of: dt.date | None = None  # default: today
    cases: list[CaseSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> RuleTestFile:
        names = [c.name for c in self.cases]
        for case in self.cases:
            for act in case.activities:
                unknown = [n for n in act.with_ if n not in names or n == case.name]
                if unknown:
                    raise ValueError(f"case '{case.name}': an activity is `with` {', '.join(unknown)}, which is not "
                                     f"another case of this file ({', '.join(names)})")
        return self


@dataclass
class CaseResult:
    file: str
    name: str
    line: int
    passed: bool
    problems: list[str] = field(default_factory=list)
    trace: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class Coverage:
    """Which rungs, flags and kinds of one rule file some case exercised."""

    rules_path: str
    rules_version: str
    rungs: dict[str, bool]
    flags: dict[str, bool]
    kinds: dict[str, bool]

    def merge(self, other: Coverage) -> None:
        for mine, theirs in ((self.rungs, other.rungs), (self.flags, other.flags), (self.kinds, other.kinds)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, False) or v

    @property
    def covered(self) -> int:
        return sum(sum(d.values()) for d in (self.rungs, self.flags, self.kinds))

    @property
    def total(self) -> int:
        return len(self.rungs) + len(self.flags) + len(self.kinds)

    def missing(self) -> list[str]:
        return ([f"rung {k}" for k, v in self.rungs.items() if not v] + [f"flag {k}" for k, v in self.flags.items()
                if not v] + [f"kind {k}" for k, v in self.kinds.items() if not v])


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # invalid test or rule files
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def percent(self) -> float:
        total = sum(c.total for c in self.coverage)
        return 100.0 * sum(c.covered for c in self.coverage) / total if total else 0.0


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


def load(path: Path, *, rules_override: Path | None = None, cache: dict[Path, RuleSet] | None = None,
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


_MODELS: dict[str, type[BaseModel]] = {"cases": CaseSpec, "contact": ContactSpec, "activities": ActivitySpec,
                                       "crm": CrmSpec, "state": StateSpec, "expect": ExpectSpec}


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
            findings.append(located.finding((*loc, "name"), f"duplicate case name '{case.name}' (case "
                                                             f"{seen[case.name] + 1} has it)"))
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
        if case.crm is not None:
            need(case.crm.Trust_Stage__c, rungs, (*loc, "crm", "Trust_Stage__c"), "rung")
        if case.state is not None:
            need(case.state.demotion_from, rungs, (*loc, "state", "demotion_from"), "rung")
            if case.crm is None or case.crm.Trust_Stage__c is None:
                findings.append(located.finding((*loc, "state"), "a demotion watch needs the rung the CRM shows: "
                                                                 "add crm: {Trust_Stage__c: ...}"))
    return findings


# -- running ---------------------------------------------------------------------------------------------------


def _run_file(path: Path, spec: RuleTestFile, located: loader.Located, rules: RuleSet,
              ) -> tuple[list[CaseResult], Coverage]:
    as_of = spec.as_of or dt.date.today()
    crm = LocalCrm.create(None)
    try:
        con = crm.con
        contacts, activities = _insert(con, spec, as_of)
        crm.prepare(FieldsSection())
        watched = _watch(spec, contacts, rules, as_of)
        engine.compute(con, rules, as_of, watched)
        place = _place(con, rules)
        kinds_of = _kinds(con, rules)
        results: list[CaseResult] = []
        cov = Coverage(rules.path, rules.version, dict.fromkeys((r.name for r in rules.rungs), False),
                       dict.fromkeys((f.id for f in rules.flags), False), dict.fromkeys(rules.kinds, False))
        for kinds in kinds_of.values():
            for k in kinds:
                cov.kinds[k] = True
        for i, (case, cid) in enumerate(zip(spec.cases, contacts, strict=True)):
            got = place[cid]
            problems = _compare(case, got, rules, activities[i], kinds_of, located, i)
            if case.expect.rung is not None and got["rung"] == case.expect.rung:
                cov.rungs[case.expect.rung] = True
            for f in _flag_ids(case.expect.flags or [], rules):
                if f in got["flags"]:
                    cov.flags[f] = True
            results.append(CaseResult(str(path), case.name, located.where(("cases", i))[0], not problems,
                                      problems))
        for i, result in enumerate(results):
            if not result.passed:
                e = explain.explain(con, rules, contacts[i], as_of, watched)
                result.trace = explain.render(e)
    finally:
        crm.close()
    return results, cov


def _insert(con: duckdb.DuckDBPyConnection, spec: RuleTestFile, as_of: dt.date,
            ) -> tuple[list[str], list[list[str]]]:
    seq = iter(range(1, 10**9))
    contacts: list[str] = []
    activities: list[list[str]] = []
    shared: list[tuple[ActivitySpec, str, str]] = []  # (activity, its Id, the case's contact): relations, at the end
    for case in spec.cases:
        cid = ids.make(ids.CONTACT, next(seq))
        c = case.contact
        created: dt.datetime | dt.date = c.CreatedDate or dt.datetime.combine(
            as_of - dt.timedelta(days=100 if c.known_for_days is None else c.known_for_days), dt.time(9))
        cols: dict[str, Any] = {"Id": cid, "CreatedDate": created}
        cols.update({k: v for k, v in c.model_dump().items() if k[0].isupper() and k != "CreatedDate"})
        if case.crm is not None:
            cols.update(case.crm.model_dump())
        _row(con, "Contact", cols)
        aids: list[str] = []
        for act in case.activities:
            day = act.date or as_of - dt.timedelta(days=act.days_ago or 0)
            logged = (None if act.logged_days_ago is None
                      else dt.datetime.combine(as_of - dt.timedelta(days=act.logged_days_ago), dt.time(17)))
            if act.object == "Task":
                aid = ids.make(ids.TASK, next(seq))
                at = dt.datetime.combine(day, dt.time(10))
                row: dict[str, Any] = {"Id": aid, "WhoId": cid, "ActivityDate": day, "CreatedDate": logged or at,
                                       "Status": "Completed", "IsClosed": True, "TaskSubtype": "Task"}
                if logged is not None:
                    row["CompletedDateTime"] = logged  # Salesforce stamps it when the task is closed: on logging
            else:
                aid = ids.make(ids.EVENT, next(seq))
                start = dt.datetime.combine(day, dt.time(14))
                minutes = act.DurationInMinutes or 60
                row = {"Id": aid, "WhoId": cid, "StartDateTime": start, "ActivityDateTime": start,
                       "EndDateTime": start + dt.timedelta(minutes=minutes), "ActivityDate": day,
                       "DurationInMinutes": minutes, "IsAllDayEvent": False, "EventSubtype": "Event",
                       "CreatedDate": logged or start - dt.timedelta(days=7)}
            row.update(act.fields())
            _row(con, act.object, row)
            if act.incoming is not None:
                _email(con, seq, aid, incoming=act.incoming, at=row["CreatedDate"] if logged else at,
                       answers_ours=bool(act.answers_ours))
            if act.with_ or act.attendees or act.declined:
                shared.append((act, aid, cid))
            aids.append(aid)
        contacts.append(cid)
        activities.append(aids)
    by_name = {case.name: cid for case, cid in zip(spec.cases, contacts, strict=True)}
    for act, aid, cid in shared:
        people = [cid, *(by_name[n] for n in act.with_)]
        for i in range(act.attendees or 0):
            extra = ids.make(ids.CONTACT, next(seq))
            _row(con, "Contact", {"Id": extra, "FirstName": "Guest", "LastName": f"Attendee {i + 1}",
                                  "CreatedDate": dt.datetime.combine(as_of - dt.timedelta(days=400), dt.time(9))})
            people.append(extra)
        for who in people:
            if act.object == "Task":
                _row(con, "TaskRelation", {"Id": ids.make(ids.TASK_RELATION, next(seq)), "TaskId": aid,
                                           "RelationId": who, "IsWhat": False})
            else:
                status = "Declined" if act.declined and who == cid else "Accepted"
                _row(con, "EventRelation", {"Id": ids.make(ids.EVENT_RELATION, next(seq)), "EventId": aid,
                                            "RelationId": who, "IsWhat": False, "IsInvitee": True,
                                            "IsParent": who == cid, "Status": status})
    return contacts, activities


def _email(con: duckdb.DuckDBPyConnection, seq: Iterator[int], aid: str, *, incoming: bool, at: dt.datetime,
           answers_ours: bool) -> None:
    """The EmailMessage of an email Task; one that answers ours replies to an outgoing message of ours (which
    belongs to no Task of the case: it only gives the reply something to answer)."""
    reply_to = None
    if answers_ours:
        reply_to = ids.make(ids.EMAIL_MESSAGE, next(seq))
        _row(con, "EmailMessage", {"Id": reply_to, "Incoming": False, "MessageDate": at - dt.timedelta(days=1),
                                   "Status": "3", "CreatedDate": at - dt.timedelta(days=1)})
    _row(con, "EmailMessage", {"Id": ids.make(ids.EMAIL_MESSAGE, next(seq)), "ActivityId": aid, "Incoming": incoming,
                               "MessageDate": at, "Status": "1" if incoming else "3", "CreatedDate": at,
                               "ReplyToEmailMessageId": reply_to})


def _row(con: duckdb.DuckDBPyConnection, table: str, cols: dict[str, Any]) -> None:
    names = ", ".join(f'"{k}"' for k in cols)
    con.execute(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})', list(cols.values()))


def _watch(spec: RuleTestFile, contacts: list[str], rules: RuleSet, as_of: dt.date) -> list[WatchRow]:
    """The demotion watch a previous sync would have left, for the cases that give one."""
    rows: list[WatchRow] = []
    for case, cid in zip(spec.cases, contacts, strict=True):
        if case.state is None:
            continue
        since = case.state.failing_since or as_of - dt.timedelta(days=case.state.failing_for_days or 0)
        rung = rules.rung_index(case.state.demotion_from)
        assert rung is not None
        rows.append((cid, rung, since))
    return rows


def _place(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, dict[str, Any]]:
    tree = sql.select(*(sql.col(c) for c in ("cid", "new_stage", "qualified", "new_next")),
                      *(sql.col(flag_col(f.id)) for f in rules.flags), from_=PLACE.name)
    rows = sql.run(con, tree).fetchall()
    out = {}
    for cid, stage, qualified, next_step, *flags in rows:
        out[cid] = {"rung": stage, "qualifies": rules.rungs[qualified].name, "next_step": next_step,
                    "flags": [f.id for f, on in zip(rules.flags, flags, strict=True) if on]}
    return out


def _kinds(con: duckdb.DuckDBPyConnection, rules: RuleSet) -> dict[str, list[str]]:
    """Each classified activity's kinds (activities of no kind, or dated after as_of, are not there)."""
    tree = sql.select(sql.col("aid"), *(sql.col(kind_col(k)) for k in rules.kinds), from_=CLASSIFIED.name)
    out: dict[str, list[str]] = {}
    for aid, *flags in sql.run(con, tree).fetchall():
        out[aid] = [k for k, on in zip(rules.kinds, flags, strict=True) if on]
    return out


def _flag_ids(names: list[str], rules: RuleSet) -> list[str]:
    by_label = {f.label: f.id for f in rules.flags}
    return [by_label.get(n, n) for n in names]


def _compare(case: CaseSpec, got: dict[str, Any], rules: RuleSet, aids: list[str],
             kinds_of: dict[str, list[str]], located: loader.Located, index: int) -> list[str]:
    want = case.expect
    problems: list[str] = []
    if want.rung is not None and got["rung"] != want.rung:
        problems.append(f"rung: expected {want.rung}, got {got['rung']}")
    if want.qualifies is not None and got["qualifies"] != want.qualifies:
        problems.append(f"qualifies: expected {want.qualifies}, got {got['qualifies']}")
    if want.flags is not None:
        expected = sorted(set(_flag_ids(want.flags, rules)))
        if expected != sorted(got["flags"]):
            problems.append(f"flags: expected [{', '.join(expected)}], got [{', '.join(sorted(got['flags']))}]")
    if want.next_step is not None and got["next_step"] != want.next_step:
        problems.append(f"next_step: expected {want.next_step!r}, got {got['next_step']!r}")
    if want.next_step_contains is not None and want.next_step_contains not in (got["next_step"] or ""):
        problems.append(f"next_step: expected it to contain {want.next_step_contains!r}, got {got['next_step']!r}")
    for j, (act, aid) in enumerate(zip(case.activities, aids, strict=True)):
        missing = [k for k in act.hints if k not in kinds_of.get(aid, [])]
        if missing:
            line = located.where(("cases", index, "activities", j))[0]
            actual = ", ".join(kinds_of.get(aid, [])) or "no kind (or dated after as_of)"
            problems.append(f"activity {j + 1} (line {line}): kind_hint {', '.join(missing)}, "
                            f"but it is classified as {actual}")
    return problems


# -- output ----------------------------------------------------------------------------------------------------


def _rule(title: str, char: str = "=", width: int = 100) -> str:
    title = f" {title} " if title else ""
    left = (width - len(title)) // 2
    return char * left + title + char * (width - left - len(title))


def render(report: Report, *, min_coverage: float | None = None) -> str:
    lines: list[str] = []
    lines.extend(str(f) for f in report.findings)
    n = len(report.results)
    if report.results:
        lines.append(f"collected {n} case{'s' if n != 1 else ''}")
        lines.append("")
    lines.extend(f"{r.id} {'PASSED' if r.passed else 'FAILED'}" for r in report.results)
    if report.failed:
        lines += ["", _rule("FAILURES")]
        for r in report.failed:
            lines.append(_rule(r.id, "_"))
            lines.append(f"{r.file}:{r.line}: case '{r.name}'")
            lines.extend(f"  {p}" for p in r.problems)
            lines.append("")
            lines.extend(f"    {t}" if t else "" for t in r.trace.splitlines())
            lines.append("")
    if report.coverage:
        lines += ["", _rule("coverage", "-")]
        for c in report.coverage:
            pct = 100.0 * c.covered / c.total if c.total else 0.0
            lines.append(f"{c.rules_path} ({c.rules_version}): {pct:.1f}% - rungs {sum(c.rungs.values())}/"
                         f"{len(c.rungs)}, flags {sum(c.flags.values())}/{len(c.flags)}, kinds "
                         f"{sum(c.kinds.values())}/{len(c.kinds)}")
            missing = c.missing()
            lines.append(f"  not exercised: {', '.join(missing)}" if missing else "  every rung, flag and kind "
                         "is exercised")
        if min_coverage is not None and report.percent < min_coverage:
            lines.append(f"coverage {report.percent:.1f}% is below --min-coverage {min_coverage:g}%")
    failed, passed = len(report.failed), n - len(report.failed)
    parts = [f"{failed} failed"] if failed else []
    parts += [f"{passed} passed"] if passed or not failed else []
    if report.findings:
        parts.append(f"{len(report.findings)} error{'s' if len(report.findings) != 1 else ''} in test or rule files")
    lines += ["", _rule(f"{', '.join(parts)} in {report.seconds:.2f}s")]
    return "\n".join(lines)
