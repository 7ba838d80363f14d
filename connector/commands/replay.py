"""The replay of a simulation: a rule set at every weekly sync of the last N weeks, to count flapping.

Each contact's timeline (connector.engine.timeline) is computed once, on the last day, and read on each weekly day:
the rung it shows on a day is the rung a sync on that day writes, whatever syncs ran before, so nothing is
re-run per week. A contact whose rung changes more than once is flapping; one created during the replay is not
counted changed by its first placement. The counts are kept per owner too (`Replay.owners`), so the report's owner
filter narrows them like everything else. Only temp tables are written.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace

import duckdb

from connector import log, sql
from connector.engine import classify, session, timeline
from connector.ruleset.compiler import RuleSet

_log = log.get("trust_ladder.simulate")

_WEEKS = "tl_sim_weeks"  # k, day: the replayed syncs, oldest first
_STEPS = "tl_sim_steps"  # per contact and replayed sync after the first: the step its rung took (-n..n)
_STEPS_SQL = """
CREATE OR REPLACE TEMP TABLE tl_sim_steps AS
SELECT o.k, o.cid, o.owner, sign(o.r - p.r) AS step
FROM tl_t_on_days o JOIN tl_t_on_days p ON p.cid = o.cid AND p.k = o.k - 1
"""
_CHANGED_BY_DAY = """SELECT k, owner, count(*) FROM tl_sim_steps WHERE step <> 0 GROUP BY k, owner"""
_TOTALS_BY_OWNER = """
SELECT owner, count(*) FILTER (WHERE changes > 0), count(*) FILTER (WHERE changes > 1),
       count(*) FILTER (WHERE reversals > 0)
FROM (
  SELECT cid, any_value(owner) AS owner, count(*) AS changes,
         count(*) FILTER (WHERE before IS NOT NULL AND before <> step) AS reversals
  FROM (SELECT cid, owner, step, lag(step) OVER (PARTITION BY cid ORDER BY k) AS before
        FROM tl_sim_steps WHERE step <> 0) s
  GROUP BY cid
) t GROUP BY owner
"""


@dataclass(frozen=True)
class OwnerReplay:
    changes: list[int]  # per replayed sync after the first, as Replay.changes
    changed: int
    flapping: int
    reversed: int


@dataclass
class Replay:
    weeks: int
    start: dt.date
    end: dt.date
    changes: list[tuple[dt.date, int]]  # contacts whose rung changed at each replayed sync after the first
    changed: int  # contacts whose rung changed at least once
    flapping: int  # contacts whose rung changed more than once
    reversed: int  # of those, contacts that went back: up then down, or down then up
    seconds: float
    owners: dict[str, OwnerReplay] = field(default_factory=dict)  # by OwnerId ('' for none)

    def for_owner(self, owner: str) -> Replay:
        """The same replay, counting only one owner's contacts."""
        mine = self.owners.get(owner, OwnerReplay([0] * len(self.changes), 0, 0, 0))
        return replace(
            self,
            changes=[(d, n) for (d, _), n in zip(self.changes, mine.changes, strict=True)],
            changed=mine.changed,
            flapping=mine.flapping,
            reversed=mine.reversed,
            owners={},
        )


def replay(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date, weeks: int) -> Replay:
    """`rules` at every weekly sync from as_of - 7*weeks to as_of: each contact's timeline computed once and read
    on each of those days; count rung changes."""
    started = time.perf_counter()
    days = [as_of - dt.timedelta(days=7 * w) for w in range(weeks, -1, -1)]
    session.lock(con)
    classify.classify(con, rules, as_of)
    sql.run_each(con, timeline.rendered(rules), {"as_of": as_of})
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_WEEKS} (k INTEGER, day DATE)")
        con.executemany(f"INSERT INTO {_WEEKS} VALUES (?, ?)", list(enumerate(days)))
        sql.run(con, timeline.on_days(_WEEKS))
        con.execute(_STEPS_SQL)
        changed_at: dict[int, dict[str, int]] = {}
        for k, owner, n in con.execute(_CHANGED_BY_DAY).fetchall():
            changed_at.setdefault(int(k), {})[str(owner)] = int(n)
        by_day = [(day, changed_at.get(k, {})) for k, day in enumerate(days) if k > 0]
        totals = {str(o): (int(a), int(b), int(c)) for o, a, b, c in con.execute(_TOTALS_BY_OWNER).fetchall()}
    finally:
        sql.run_each(con, timeline.dropped(rules, _WEEKS, _STEPS))
    owners = {o: OwnerReplay([n.get(o, 0) for _, n in by_day], *t) for o, t in totals.items()}
    result = Replay(
        weeks=weeks,
        start=days[0],
        end=days[-1],
        changes=[(d, sum(n.values())) for d, n in by_day],
        changed=sum(t[0] for t in totals.values()),
        flapping=sum(t[1] for t in totals.values()),
        reversed=sum(t[2] for t in totals.values()),
        seconds=time.perf_counter() - started,
        owners=owners,
    )
    _log.info(
        "simulate.replayed",
        weeks=weeks,
        rules_version=rules.version,
        flapping=result.flapping,
        seconds=round(result.seconds, 2),
    )
    return result
