"""The timeline's shared pieces: day numbers, window frames, the plan of what the rules need (kind sets,
windows, exit days, as_of thresholds) and the names of its relations."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlglot import exp

from connector import sql
from connector.engine.relations import (
    CONTACTS,
    TIMELINE,
    feature_col,
    kind_col,
)
from connector.ruleset.compiler import CompiledFeature, RuleSet, period_days
from connector.ruleset.expr import Type

EPOCH = dt.date(1970, 1, 1)
MAX_OFFSET = 2 * 36_500  # days: no threshold beyond two hundred years can flip within a contact's history
RUNG_BITS = 16  # a rung index is below this (schema.MAX_RUNGS is 12): `dn * 16 + rung` carries both in one number

DAYS = "tl_t_day"  # per contact and activity day: how many activities of each kind set
DAYS_ALL = "tl_t_day_all"  # the same for every contact a sync computes, made once for its batches
BORN = "tl_t_born"  # per contact a sync computes: the day its record was created
TRIGGERS = "tl_t_trig"  # + i: the activities that trigger the ith `unanswered` feature, of those contacts
POINTS = "tl_t_pts"  # per contact: the days its rung or flags can change
STATES = "tl_t_q"  # per contact and point: flags, criteria, the rung it qualifies for (from the features)
PERIODS = "tl_t_per"  # + i: per contact and period (`_points._periods`)
RUNGS = "tl_t_rung"  # per contact and point (and each day a held rung drops): the rung it stands on
SCRATCH = (DAYS, DAYS_ALL, BORN, POINTS, STATES, RUNGS, "tl_t_drop")


def _dn(date: exp.Expr) -> exp.Expr:
    """A date as a day number, the order key of every window frame."""
    return exp.cast(exp.Sub(this=date, expression=sql.lit(EPOCH)), exp.DataType.Type.INT)


def _date(dn: exp.Expr) -> exp.Expr:
    return exp.cast(
        exp.Add(this=sql.lit(EPOCH), expression=exp.cast(dn, exp.DataType.Type.INT)), exp.DataType.Type.DATE
    )


def _period(dn: exp.Expr, per: int) -> exp.Expr:
    """The number of the `per`-day period a day falls in, counted from 1970 (floor division, so days before 1970
    are numbered like the others), and the day's place within it."""
    return sql.q("CAST(floor($dn / $per) AS BIGINT)", dn=dn, per=per)


def _in_period(dn: exp.Expr, per: int) -> exp.Expr:
    return sql.q("$dn - $per * $g", dn=dn, per=per, g=_period(dn.copy(), per))


def _window(
    agg: exp.Expr, kind: str, start: int | None, end: int | None, *, order: Iterable[exp.Expr] = ()
) -> exp.Window:
    """`agg OVER (PARTITION BY cid ORDER BY dn kind BETWEEN start PRECEDING AND end PRECEDING)`; None for
    UNBOUNDED (start) or CURRENT ROW (end)."""
    spec = exp.WindowSpec(
        kind=kind,
        start="UNBOUNDED" if start is None else sql.lit(start),
        start_side="PRECEDING",
        end="CURRENT ROW" if end is None or end == 0 else sql.lit(end),
        end_side=None if end is None or end == 0 else "PRECEDING",
    )
    keys = [exp.Ordered(this=sql.col("dn"), nulls_first=False), *order]
    return exp.Window(this=agg, partition_by=[sql.col("cid")], order=exp.Order(expressions=keys), spec=spec)


def _over(agg: exp.Expr, *, order: Iterable[exp.Expr] = (), following: bool = False) -> exp.Window:
    """A window with no frame (lead, lag, row_number), or the rows from this one on (`following`)."""
    keys = [exp.Ordered(this=sql.col("dn"), nulls_first=False), *order]
    spec = (
        exp.WindowSpec(kind="ROWS", start="CURRENT ROW", end="UNBOUNDED", end_side="FOLLOWING") if following else None
    )
    return exp.Window(this=agg, partition_by=[sql.col("cid")], order=exp.Order(expressions=keys), spec=spec)


@dataclass
class _Plan:
    """What the rules need of the timeline: kind sets to count per day, window aggregates, and where points come
    from."""

    rules: RuleSet
    kindsets: dict[frozenset[str], str] = field(default_factory=dict)  # kind set -> per-day count column
    windows: dict[tuple[str, str, str, int | None, int | None], tuple[str, exp.Expr]] = field(default_factory=dict)
    exits: set[tuple[str, int]] = field(default_factory=set)  # (count column, days after an activity)
    # (count column, period days) -> the most periods a `distinct_periods` counts: its exits (`_points._slides`)
    slides: dict[tuple[str, int], int] = field(default_factory=dict)
    linked: dict[str, set[int]] = field(default_factory=dict)  # date feature -> day offsets of as_of thresholds
    features: list[CompiledFeature] = field(default_factory=list)  # those the conditions read, in dependency order
    cached: bool = False  # only the contacts of `tl_t_todo` are computed; the others come from the cache
    lookahead: int | None = None  # days after the evaluation day computed point by point (None: all of them)
    periods: dict[tuple[str, int], int] = field(default_factory=dict)  # (count column, period days) -> periods

    def period_table(self, n: str, per: int, periods: int = 0) -> str | None:
        """The table of `_points._periods` for a `distinct_periods` of `periods` periods over count column `n`, if
        it has one (one of more than PERIODS_JOINED periods has none, even beside a shorter one that has)."""
        if self.periods.get((n, per), -1) < periods:
            return None
        return f"{PERIODS}{list(self.periods).index((n, per))}"

    def count(self, kinds: Iterable[str]) -> str:
        key = frozenset(kinds)
        if key not in self.kindsets:
            self.kindsets[key] = f"n_{len(self.kindsets)}"
        return self.kindsets[key]

    def window(self, agg: str, n: str, kind: str, start: int | None, end: int | None) -> exp.Expr:
        """A window aggregate over a count column, made once however many features use it."""
        key = (agg, n, kind, start, end)
        if key not in self.windows:
            value: exp.Expr
            if agg == "sum":
                value = exp.Sum(this=sql.col(n))
            else:  # min/max of the point's day number where such activity happened: first and last
                cond = exp.GT(this=sql.col(n), expression=sql.lit(0))
                day = sql.case([(cond, sql.col("dn"))])
                value = exp.Min(this=day) if agg == "min" else exp.Max(this=day)
            self.windows[key] = (f"w_{len(self.windows)}", _window(value, kind, start, end))
        column = sql.col(self.windows[key][0])
        return column if agg == "sum" else _date(column)

    def first_ever(self, key: tuple[str, str, str, int | None, int | None]) -> str | None:
        """The count column of a window that is the first day ever with such activity (min over every point so
        far): that is one day per contact, read from its day counts instead of a window over its points."""
        agg, n, kind, start, end = key
        return n if (agg, kind, start, end) == ("min", "ROWS", None, None) else None


def _names(tree: exp.Expr) -> set[str]:
    return {c.name for c in tree.find_all(exp.Column)}


def _reads_as_of(tree: exp.Expr) -> bool:
    return any(p.name == sql.AS_OF_PARAM for p in tree.find_all(exp.Placeholder))


def _conditions(rules: RuleSet) -> list[exp.Expr]:
    return [f.compiled.expr for f in rules.flags] + [c.compiled.expr for r in rules.rungs for c in r.criteria]


def _needed(rules: RuleSet) -> list[CompiledFeature]:
    """The features the flags and criteria read, with those the expr features among them read, in rule order."""
    by_col = {feature_col(n): n for n in rules.features}
    want = {by_col[c] for t in _conditions(rules) for c in _names(t) if c in by_col}
    for f in reversed(list(rules.features.values())):  # dependency order: users after what they use
        if f.name in want and f.expr is not None:
            want |= {n for n in f.expr.names if n in rules.features}
    return [f for f in rules.features.values() if f.name in want]


def _thresholds(rules: RuleSet, needed: list[CompiledFeature]) -> dict[str, set[int]]:
    """For each date feature a condition compares with `as_of` (directly or through expr features), the day
    offsets at which such a comparison can flip: every number of the comparison, as days after the date (and
    before it, for a Contact field, which may lie ahead)."""
    names = {f.name: f for f in needed}
    by_col = {feature_col(n): n for n in names}
    dep: dict[str, bool] = {}  # expr feature -> whether it reads as_of
    dates: dict[str, set[str]] = {}  # feature -> the date features it reads (itself for a date feature)
    for f in needed:
        if f.expr is not None:
            used = [n for n in f.expr.names if n in names]
            dep[f.name] = _reads_as_of(f.expr.expr) or any(dep.get(n, False) for n in used)
            dates[f.name] = {d for n in used for d in dates.get(n, set())}
        elif f.type == Type.DATE:
            dates[f.name] = {f.name}
    out: dict[str, set[int]] = {}
    trees = _conditions(rules) + [f.expr.expr for f in needed if f.expr is not None]
    comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
    for tree in trees:
        for node in tree.find_all(*comparisons):
            used = [by_col[c] for c in _names(node) if c in by_col]
            if not (_reads_as_of(node) or any(dep.get(n, False) for n in used)):
                continue
            linked = {d for n in used for d in dates.get(n, set())}
            consts = _numbers(node)
            for n in used:  # numbers inside the expr features the comparison reads
                f = names[n]
                if f.expr is not None:
                    consts |= _numbers(f.expr.expr)
            for d in linked:
                field_date = names[d].spec.type == "field"
                offs = out.setdefault(d, set())
                for c in consts:
                    for o in (c, c + 1, -c, -c + 1):
                        if o > 0 or (field_date and o != 0):
                            offs.add(o)
    return out


def _numbers(tree: exp.Expr) -> set[int]:
    """The whole numbers a threshold of `tree` can put a change day at: its numeric literals, rounded both ways;
    none beyond MAX_OFFSET days (a comparison with 1e308 never flips within a history)."""
    out: set[int] = set()
    for lit in tree.find_all(exp.Literal):
        if lit.is_string:
            continue
        try:
            value = float(lit.this)
        except ValueError:
            continue
        if math.isfinite(value) and abs(value) <= MAX_OFFSET:
            out |= {math.floor(value), math.ceil(value)}
    return out


def lookahead(rules: RuleSet) -> int:
    """How many days after the evaluation day a sync follows a contact's timeline point by point. What a sync
    writes needs the days after it only for the day a held rung drops (within the grace period, unless the
    contact qualifies again on its own: engine.timeline computes those contacts again in full) and for the next
    change day; past the lookahead, every point collapses into one on the day after it, which serves as the day
    to look again. A quarter keeps the contacts looked at again for nothing below about one in ninety a day,
    while the points after the evaluation day (half of a first sync's, to the end of the longest window) shrink
    to the few a quarter holds."""
    return max(LOOKAHEAD_DAYS, rules.settings.demotion_grace_days + 1)


LOOKAHEAD_DAYS = 91
# A `distinct_periods` of at most this many periods reads a table of its contact's periods (`_points._periods`)
# instead of a window frame per period; beyond, the table's columns would outgrow the frames it saves.
PERIODS_JOINED = 24


def _plan(rules: RuleSet, lookahead: int | None = None) -> _Plan:
    p = _Plan(rules, lookahead=lookahead)
    p.features = _needed(rules)
    p.linked = _thresholds(rules, p.features)
    for f in p.features:
        s = f.spec
        if s.type in ("count", "first", "last") and s.within_days:
            p.exits.add((p.count(s.count or s.first or s.last or []), s.within_days))
        if s.type == "ratio" and s.within_days:
            p.exits.add((p.count(s.ratio or []), s.within_days))
            p.exits.add((p.count(s.per or []), s.within_days))
        if s.type == "distinct_periods":
            n = p.count(s.distinct_periods or [])
            slide = (n, period_days(s))
            p.slides[slide] = max(p.slides.get(slide, 0), s.periods or 0)
            if (s.periods or 0) <= PERIODS_JOINED:
                key = (n, period_days(s))
                p.periods[key] = max(p.periods.get(key, 0), s.periods or 0)
        if s.type == "unanswered":
            n = p.count(s.unanswered or [])
            p.count(s.answered_by or [])
            p.exits.add((n, (s.older_than_days or 0) + 1))
            if s.within_days:
                p.exits.add((n, s.within_days))
        if s.type in ("count", "first", "last", "ratio", "distinct_periods"):
            for kinds in (s.count, s.first, s.last, s.ratio, s.per, s.distinct_periods):
                if kinds:
                    p.count(kinds)
    p.exits = {(n, o) for n, o in p.exits if o > 0}
    return p


def _any_kind(kinds: Iterable[str]) -> exp.Expr:
    return sql.any_of(sql.col(kind_col(k)) for k in sorted(kinds))


def _values(rows: Sequence[tuple[int, ...]], alias: str, columns: list[str]) -> exp.Expr:
    return exp.Values(
        expressions=[exp.Tuple(expressions=[sql.lit(v) for v in row]) for row in rows],
        alias=exp.TableAlias(this=sql.ident(alias), columns=[sql.ident(c) for c in columns]),
    )


CACHE = "tl_timeline_cache"  # cached rows of this rules version, as the state store keeps them
FINGERPRINTS = "tl_t_fp"  # per live contact: a hash of everything its timeline reads
TODO_ALL = "tl_t_todo_all"  # the contacts to compute
TODO = "tl_t_todo"  # those of this batch
NOW = "tl_t_now"  # their rows
NOW_ALL = "tl_t_now_all"  # the rows of every batch
BATCH = 50_000  # contacts a batch computes at most: what a first sync of a million holds in memory at once
FRESH = "tl_timeline_new"  # their rows as the state store keeps them
# The timeline's row, with what it was computed from (fp, as_of), what its sync meant to write (ph, see
# connector.engine.scope) and the open flags' days, ';'-joined in rule order
# ('' for a closed flag), since the flags are the rule file's.
CACHE_COLUMNS = (
    TIMELINE.columns[0],
    ("fp", "UBIGINT"),
    ("ph", "UBIGINT"),
    ("as_of", "DATE"),
    *TIMELINE.columns[1:],
    ("flag_since", "VARCHAR"),
)


def _of_batch(table: str, columns: list[str]) -> exp.Expr:
    """The rows of a table `_points._pooled` made that belong to this batch's contacts (`tl_t_todo`), joined on
    the batch key `h` (a hash of the contact Id) before the Id: the tables are in key order and a batch is a
    range of keys (`engine.timeline.batch`), so the join reads only that range's blocks. At a million contacts a
    filter on the Id alone scanned all of them once per batch, an eighth of a first sync.

    Their `cid` is the contact's number within the batch (`tl_t_todo.k`), not its Id: every window of the batch
    sorts and every join hashes on it, and an integer costs a fifth of the states' CPU less than an 18-character
    Id. `_now` gives the Id back."""
    cols = ", ".join("b.k AS cid" if c == "cid" else f"a.{c}" for c in columns)
    return sql.q(
        f"SELECT {cols} FROM $t a JOIN $todo b ON b.h = a.h AND b.cid = a.cid", t=sql.table(table), todo=sql.table(TODO)
    )


def _todo_contacts() -> exp.Expr:
    """The contacts of this batch with their number in it (`tl_key`, the batch's `cid`: `_of_batch`)."""
    return sql.q(
        'SELECT c.*, t.k AS tl_key FROM $contacts c JOIN $todo t ON t.cid = c."Id"',
        contacts=sql.table(CONTACTS.name),
        todo=sql.table(TODO),
    )


def _numbered(where: str) -> str:
    """`tl_t_todo`'s columns from a table of contact Ids: the Id, the batch key `h` and the contact's number within
    the batch (`k`, see `_of_batch`)."""
    return f"SELECT cid, hash(cid) AS h, CAST(row_number() OVER () AS INTEGER) AS k FROM $all WHERE {where}"
