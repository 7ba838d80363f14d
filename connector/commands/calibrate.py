"""`calibrate`: is each rung earned? The ladder measured against what happened next, from the org's own history.

For the first day D of each month of the period, every contact's rung that day is read from its timeline
(connector.commands.rung_days: the rung a sync on D would have written). For each outcome of the rule file, each
(contact, D) is a hit when the outcome happened within its horizon after D (D excluded): a won opportunity they
were a contact role on closed, an activity of the outcome's kinds happened, or for `no_activity` none did. Only days
whose horizon ends on or before the last day the CRM data covers count (connector.commands.calibrate_months), so
no contact is judged on a future the data does not show yet.

Per rung and outcome: the rate, a 95% Wilson interval (right for rates near 0 or 1 and small counts, where the
normal approximation is not), and the lift over the rung below. The rungs are *ordered* for an outcome when each
rung's rate is above the one below it (below it, for a bad outcome). Per criterion of each rung: the rate among
contacts on the rung below it or higher that met it, beside those that did not; a criterion whose two rates are
alike adds nothing. Out of time: the last RECENT_MONTHS days of each outcome are reported apart, so thresholds tuned
on the earlier periods can be checked on periods they were not tuned on.

Everything heavy is set-based in the engine: the timeline, then one ASOF join that finds each contact's first
outcome after each day, then GROUP BY. Python only computes the intervals of a few dozen counts.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
from sqlglot import exp

from connector import log, sql
from connector.commands import calibrate_gone, calibrate_months, calibrate_notes, rung_days
from connector.commands.calibration import (
    RECENT_MONTHS,
    Calibration,
    CriterionRow,
    OutcomeTable,
    Rate,
    RungRow,
    says_within,
)
from connector.engine.relations import CLASSIFIED, criterion_col, kind_col
from connector.engine.timeline import TODO
from connector.ruleset.compiled import CompiledOutcome
from connector.ruleset.compiler import RuleSet

_OUTCOMES = "tl_cal_outcome"  # o, neg, horizon, split_k, last_k
_EVENTS = "tl_cal_event"  # o, cid, day: the days each outcome's thing happened
_GONE = "tl_cal_gone"  # o, cid, day: the day a contact went, for the outcomes that happen once (contact_gone)
_HITS = "tl_cal_hit"  # o, k, cid, r, recent, hit, and the criteria: one batch of contacts
SCRATCH = ("tl_cal_outcome", "tl_cal_event", "tl_cal_gone", _HITS)  # calibrate's own tables, dropped after it

_log = log.get("trust_ladder.calibrate")


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]).fetchone()
    return bool(row and row[0])


def _event_source(o: int, outcome: CompiledOutcome, gone_fields: set[str]) -> exp.Expr:
    """The days the outcome's thing happened for each contact: a won deal's close, an activity of its kinds, the
    day it went (calibrate_gone; `gone_fields`: the Contact fields the data holds)."""
    if outcome.gone is not None:
        gone = calibrate_gone.source(o, outcome, gone_fields)
        assert gone is not None  # an outcome without a usable field is left out before
        return gone
    if outcome.type == "won_opportunity":
        body = (
            f'SELECT {o} AS o, r."ContactId" AS cid, o."CloseDate" AS day FROM "OpportunityContactRole" r '
            'JOIN "Opportunity" o ON o."Id" = r."OpportunityId" '
            'WHERE o."IsWon" AND NOT COALESCE(o."IsDeleted", false) AND NOT COALESCE(r."IsDeleted", false) '
            'AND o."CloseDate" <= $as_of AND r."ContactId" IS NOT NULL'
        )
        if outcome.opportunity_types:
            return sql.q(
                body + ' AND list_contains($types, o."Type")',
                types=sql.func("list_value", *(sql.lit(t) for t in outcome.opportunity_types)),
                as_of=sql.as_of(),
            )
        return sql.q(body, as_of=sql.as_of())
    cond = sql.any_of(sql.col(kind_col(k)) for k in outcome.kinds)
    return sql.q(f"SELECT {o} AS o, cid, day FROM $act WHERE $cond", act=sql.table(CLASSIFIED.name), cond=cond)


_HIT_SQL = """
SELECT x.o, g.k, g.cid, g.r, g.k > x.split_k AS recent,
       CASE WHEN x.neg THEN NOT COALESCE(e.day <= g.day + x.horizon, false)
            ELSE COALESCE(e.day <= g.day + x.horizon, false) END AS hit
FROM $rungs g JOIN $outcomes x ON g.k <= x.last_k
LEFT JOIN $gone f ON f.o = x.o AND f.cid = g.cid
ASOF LEFT JOIN (SELECT e.* FROM $events e JOIN $batch b ON b.h = e.h AND b.cid = e.cid) e
  ON e.o = x.o AND e.cid = g.cid AND e.day > g.day
WHERE f.day IS NULL OR f.day > g.day
"""
_GONE_SQL = """
SELECT e.o, e.cid, min(e.day) AS day FROM $events e JOIN $outcomes x ON x.o = e.o AND x.once GROUP BY e.o, e.cid
"""
_PER_RUNG = "SELECT o, r, recent, count(*), count(*) FILTER (WHERE hit) FROM $hits GROUP BY o, r, recent"
_PEOPLE_SQL = "SELECT o, r, count(DISTINCT cid) FROM $hits GROUP BY o, r"
_EVENTS_SQL = "SELECT o, count(*) FROM $events GROUP BY o"
_PER_CRIT = (
    "SELECT o, $c AS c, $met AS met, count(*), count(*) FILTER (WHERE hit) FROM $hits WHERE r >= $r GROUP BY o, met"
)


@dataclass(frozen=True)
class Holdings:
    """What the CRM data holds that calibration may read: deals (Opportunity and OpportunityContactRole), the
    Contact fields it has, those a Salesforce mirror's pull selected (None elsewhere), and whether `crm_activity`
    says when each activity was logged (LoggedDate)."""

    opportunities: bool
    contact_columns: set[str]
    pulled: set[str] | None = None
    logged: bool = False

    def has_contact_field(self, name: str) -> bool:
        return name in self.contact_columns and (self.pulled is None or name in self.pulled)

    def last_day_query(self) -> exp.Expr:
        """The newest day this data shows something happening (calibrate_months.last_day_query)."""
        return calibrate_months.last_day_query(
            logged=self.logged, deals=self.opportunities, bounces=self.has_contact_field("EmailBouncedDate")
        )

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection, opportunities: bool | None = None) -> Holdings:
        """What the DuckDB data behind `con` holds (`opportunities`: given, or whether both tables are there)."""
        if opportunities is None:
            opportunities = _has_table(con, "Opportunity") and _has_table(con, "OpportunityContactRole")
        logged = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'crm_activity' AND column_name = 'LoggedDate'"
        ).fetchone()
        return cls(
            opportunities,
            calibrate_gone.contact_columns(con),
            calibrate_gone.pulled_fields(con),
            bool(logged and logged[0]),
        )


@dataclass
class Plan:
    """What a calibration measures, worked out before any data is read: the outcomes it can measure on this CRM
    data, per outcome (o, neg, horizon, split_k, last_k, once, the month indexes measured), the Contact fields
    each gone outcome reads, and the criteria."""

    outcomes: list[CompiledOutcome]
    rows: list[tuple[int, bool, int, int, int, bool, list[int]]]
    gone_have: dict[str, set[str]]
    crits: list[tuple[int, int]]


def plan(
    rules: RuleSet,
    as_of: dt.date,
    *,
    since: dt.date | None,
    horizon: int | None,
    holds: Holdings,
    last: dt.date | None = None,
) -> tuple[Calibration, Plan | None]:
    """The calibration's frame (with notes on what is left out), and its plan; None when nothing is to measure.
    `last`: the last day the CRM data covers (calibrate_months.covered; the evaluation date if not given). Only
    the months whose horizon ends by then are measured, and the default period counts back from it."""
    last = min(last or as_of, as_of)
    since_given = since is not None
    since = since or calibrate_months.default_since(last)
    notes: list[str] = []
    outcomes: list[CompiledOutcome] = []
    gone_have: dict[str, set[str]] = {}
    for o in rules.outcomes:
        if o.type == "won_opportunity" and not holds.opportunities:
            notes.append(calibrate_notes.no_deal_tables(o))
            continue
        if o.gone is not None:
            have, lacking = calibrate_gone.usable(o, holds.contact_columns, holds.pulled)
            if lacking:
                notes.append(
                    f"outcome '{o.name}': the CRM data holds no Contact.{', Contact.'.join(lacking)} ("
                    "a field the sync user cannot see is not pulled: grant read access (field-level security) and "
                    "sync; a field named since the last sync is pulled by the next one)"
                    + ("" if have else "; left out")
                )
            if not have:
                continue
            gone_have[o.name] = have
        outcomes.append(o)
    if not rules.outcomes:
        notes.append(calibrate_notes.no_outcomes(rules.path))
    period = calibrate_months.month_days(since, as_of)
    horizons = [horizon or o.horizon_days for o in outcomes]
    per_outcome = [calibrate_months.measured(period, h, last) for h in horizons]
    used = max((len(ks) for ks in per_outcome), default=0)
    left = calibrate_months.left_out(period, used, min(horizons), last, as_of) if outcomes else None
    cal = Calibration(
        as_of, since, rules.version, [r.name for r in rules.rungs], period[:used], [], notes, last_day=last, left=left
    )
    if outcomes and not used:
        cal.empty = calibrate_months.what_to_try(since, min(horizons), last, since_given=since_given)
    if not outcomes or not used:
        return cal, None
    rows = []
    for i, (o, h, ks) in enumerate(zip(outcomes, horizons, per_outcome, strict=True)):
        last_k = ks[-1] if ks else -1
        split_k = ks[-RECENT_MONTHS - 1] if len(ks) > RECENT_MONTHS else -1
        rows.append((i, o.type == "no_activity", h, split_k, last_k, o.gone is not None, ks))
    return cal, Plan(outcomes, rows, gone_have, rung_days.criteria(rules))


def outcomes_table(p: Plan) -> exp.Expr:
    """`tl_cal_outcome`: which outcome, whether it is a `no_activity`, its horizon and months, whether once."""
    values = exp.values(
        [tuple(exp.convert(v) for v in row[:6]) for row in p.rows],
        alias="t",
        columns=["o", "neg", "horizon", "split_k", "last_k", "once"],
    )
    return sql.create_temp(_OUTCOMES, exp.select(exp.Star()).from_(values))


def events_table(p: Plan) -> exp.Expr:
    """`tl_cal_event`: the days each outcome's thing happened for each contact ($as_of bound)."""
    sources = [_event_source(i, o, p.gone_have.get(o.name, set())) for i, o in enumerate(p.outcomes)]
    union = sources[0]
    for src in sources[1:]:
        union = exp.union(union, src, distinct=False)
    # In the order of the timeline's batch key (a hash of the Id), so a batch's join reads only its own blocks.
    return sql.create_temp(_EVENTS, sql.q("SELECT hash(cid) AS h, * FROM ($u) u ORDER BY h", u=union))


def gone_table() -> exp.Expr:
    """`tl_cal_gone`: a contact goes once: its first day gone, for the months after it to be left out."""
    return sql.create_temp(_GONE, sql.q(_GONE_SQL, events=sql.table(_EVENTS), outcomes=sql.table(_OUTCOMES)))


def hits_table(p: Plan, rungs: str) -> exp.Expr:
    """`tl_cal_hit`: each (outcome, contact-month) of the batch in `rungs`, whether it was a hit, and the criteria
    the contact met that day. The events are the batch's own (`tl_t_todo`: cid and the batch key h): joined to all
    of them, every batch sorted every contact's events again, 21 times at a million contacts."""
    body = sql.q(
        _HIT_SQL,
        rungs=sql.table(rungs),
        outcomes=sql.table(_OUTCOMES),
        gone=sql.table(_GONE),
        events=sql.table(_EVENTS),
        batch=sql.table(TODO),
    )
    assert isinstance(body, exp.Select)
    body = body.select(*(sql.col(criterion_col(r, j), "g") for r, j in p.crits), append=True)
    return sql.create_temp(_HITS, body)


def events_query() -> exp.Expr:
    """Over `tl_cal_event`: how many rows each outcome's source holds (an outcome without any is left out)."""
    return sql.q(_EVENTS_SQL, events=sql.table(_EVENTS))


def count_queries(p: Plan) -> tuple[exp.Expr, exp.Expr, exp.Expr | None]:
    """Over `tl_cal_hit`: contact-months and hits per outcome, rung and period; distinct contacts per outcome and
    rung; contact-months and hits per outcome, criterion and whether met, among contacts on the rung below or
    higher."""
    hits = sql.table(_HITS)
    crit: exp.Expr | None = None
    parts = [
        sql.q(_PER_CRIT, c=n, met=sql.col(criterion_col(r, j)), r=r - 1, hits=hits) for n, (r, j) in enumerate(p.crits)
    ]
    if parts:
        crit = parts[0]
        for part in parts[1:]:
            crit = exp.union(crit, part, distinct=False)
    return sql.q(_PER_RUNG, hits=hits), sql.q(_PEOPLE_SQL, hits=hits), crit


@dataclass
class Counts:
    """The counts of every batch of contacts, added up (a contact is in one batch only, so distinct contacts add
    up too)."""

    per_rung: dict[tuple[int, int, bool], tuple[int, int]] = field(default_factory=dict)
    people: dict[tuple[int, int], int] = field(default_factory=dict)
    per_crit: dict[tuple[int, int, bool], tuple[int, int]] = field(default_factory=dict)
    events: dict[int, int] = field(default_factory=dict)  # per outcome: its source's rows, over every contact

    def add_events(self, rows: Rows) -> None:
        for o, n in rows:
            self.events[int(o)] = self.events.get(int(o), 0) + int(n)

    def add(self, per_rung: Rows, people: Rows, per_crit: Rows) -> None:
        for o, r, recent, n, h in per_rung:
            key = (int(o), int(r), bool(recent))
            was = self.per_rung.get(key, (0, 0))
            self.per_rung[key] = (was[0] + int(n), was[1] + int(h))
        for o, r, n in people:
            self.people[(int(o), int(r))] = self.people.get((int(o), int(r)), 0) + int(n)
        for o, c, met, n, h in per_crit:
            key = (int(o), int(c), bool(met))
            was = self.per_crit.get(key, (0, 0))
            self.per_crit[key] = (was[0] + int(n), was[1] + int(h))


Rows = list[tuple[Any, ...]]


def finish(cal: Calibration, rules: RuleSet, p: Plan, counts: Counts) -> Calibration:
    """The tables of every outcome, from the counts; an outcome whose source holds no row is left out, named."""
    days = cal.days
    for i, o in enumerate(p.outcomes):
        _, _, h, split_k, last_k, _, ks = p.rows[i]
        if not counts.events.get(i):
            cal.notes.append(calibrate_notes.no_events(o, cal.as_of))
            continue
        rows: list[RungRow] = []
        for r in rules.rungs:
            tn, th = counts.per_rung.get((i, r.index, False), (0, 0))
            rn, rh = counts.per_rung.get((i, r.index, True), (0, 0))
            all_ = Rate(tn + rn, th + rh)
            below = rows[-1].all.rate if rows else None
            lift = all_.rate / below if all_.rate is not None and below else None
            rows.append(RungRow(r.name, all_, Rate(tn, th), Rate(rn, rh), counts.people.get((i, r.index), 0), lift))
        crit_rows = []
        for n, (ri, j) in enumerate(p.crits):
            met = Rate(*counts.per_crit.get((i, n, True), (0, 0)))
            not_met = Rate(*counts.per_crit.get((i, n, False), (0, 0)))
            crit_rows.append(CriterionRow(rules.rungs[ri].name, rules.rungs[ri].criteria[j].says, met, not_met))
        cal.outcomes.append(
            OutcomeTable(
                o.name,
                says_within(o.says, o.horizon_days, h),
                o.good,
                h,
                days[ks[0]] if ks else None,
                days[last_k] if ks else None,
                days[split_k + 1] if ks and split_k >= 0 else None,
                rows,
                crit_rows,
                declared_horizon_days=o.horizon_days,
                months=len(ks),
            )
        )
        if not ks:
            cal.notes.append(
                f"outcome '{o.name}': no first of a month from {cal.since.isoformat()} is {h} days before "
                f"{(cal.last_day or cal.as_of).isoformat()}, the last day the CRM data covers; nothing to measure"
            )
    return cal


def calibrate(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    *,
    since: dt.date | None = None,
    horizon: int | None = None,
    have_opportunities: bool | None = None,
) -> Calibration:
    """Calibrate `rules` on the CRM data behind `con` (`crm_contact`, `crm_activity` prepared; `Opportunity` and
    `OpportunityContactRole` when the outcomes read deals), on DuckDB (connector.commands.calibrate_spark: on
    Spark, with the same statements)."""
    started = time.process_time()
    params = {"as_of": as_of}
    holds = Holdings.of(con, have_opportunities)
    last = calibrate_months.covered(as_of, sql.scalar(con, holds.last_day_query(), params))
    cal, p = plan(rules, as_of, since=since, horizon=horizon, holds=holds, last=last)
    if p is None:
        cal.seconds = time.process_time() - started
        return cal
    counts = Counts()
    per_rung, people, per_crit = count_queries(p)

    def events() -> None:
        """The outcome tables, once the activities are classified."""
        for tree in (outcomes_table(p), events_table(p), gone_table()):
            sql.run(con, tree, params)
        counts.add_events(sql.run(con, events_query()).fetchall())

    def batch() -> None:
        """This batch's contact-months against every outcome, added to the counts."""
        sql.run(con, hits_table(p, rung_days.OUT))
        counts.add(
            sql.run(con, per_rung).fetchall(),
            sql.run(con, people).fetchall(),
            sql.run(con, per_crit).fetchall() if per_crit is not None else [],
        )

    try:
        rung_days.compute(con, rules, as_of, cal.days, with_criteria=True, each_batch=batch, classified=events)
    finally:
        for name in (*SCRATCH, rung_days.OUT, rung_days.DAYS, CLASSIFIED.name):
            sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(name)))
    finish(cal, rules, p, counts)
    cal.seconds = time.process_time() - started
    _log.info("calibrate.finished", outcomes=len(cal.outcomes), days=len(cal.days), cpu_s=round(cal.seconds, 2))
    return cal
