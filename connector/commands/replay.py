"""The replay of a simulation: a rule set run at every weekly sync of the last N weeks, to count flapping.

It starts from an empty CRM and carries each week's rung and demotion watch forward exactly as real syncs do; a
contact whose rung changes more than once is flapping. The counts are kept per owner too (`Replay.owners`), so the
report's owner filter narrows them like everything else. Only temp tables are written.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field, replace

import duckdb

from connector import engine, log
from connector.engine import sql
from connector.engine.relations import PLACE
from connector.ruleset.compiler import RuleSet

_CONTACT = "tl_sim_contact"  # the replay's copy of the contacts, without the trust fields
_HELD = "tl_sim_held"  # the replay's rung per contact, carried from one replayed sync to the next
_TRUST = ("cur_stage", "cur_since", "cur_flags", "cur_next", "cur_reason", "cur_version")

_log = log.get("trust_ladder.simulate")

_REPLAY_CONTACTS = """
CREATE OR REPLACE TEMP VIEW crm_contact AS
SELECT c.*, h.stage AS cur_stage, h.since AS cur_since, CAST(NULL AS VARCHAR) AS cur_flags,
       CAST(NULL AS VARCHAR) AS cur_next, CAST(NULL AS VARCHAR) AS cur_reason, CAST(NULL AS VARCHAR) AS cur_version
FROM tl_sim_contact c LEFT JOIN tl_sim_held h ON h.cid = c."Id"
WHERE c."CreatedDate" IS NULL OR CAST(c."CreatedDate" AS DATE) <= $day
"""
_CHANGED_BY_OWNER = f"""SELECT COALESCE(c."OwnerId", ''), count(*) FROM {_HELD} h JOIN {_CONTACT} c ON c."Id" = h.cid
WHERE h.changed GROUP BY 1"""
_TOTALS_BY_OWNER = f"""SELECT COALESCE(c."OwnerId", ''), count(*) FILTER (WHERE changes > 0),
  count(*) FILTER (WHERE changes > 1), count(*) FILTER (WHERE reversals > 0)
FROM {_HELD} h JOIN {_CONTACT} c ON c."Id" = h.cid GROUP BY 1"""


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
    """Run `rules` at every weekly sync from as_of - 7*weeks to as_of, from an empty CRM; count rung changes.

    The contacts are read once into a temp copy; `crm_contact` is pointed at that copy joined with the replay's
    own rungs (`_HELD`), so each replayed sync compares with what the one before it wrote; promotion, demotion
    grace and decay come from each contact's history, exactly as in real syncs. The original `crm_contact` view
    is restored afterwards.
    """
    started = time.perf_counter()
    view = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'crm_contact' AND temporary").fetchone()
    if view is None:
        raise RuntimeError("the replay needs the backend's crm_contact view (LocalCrm.prepare)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_CONTACT} AS SELECT * EXCLUDE ({', '.join(_TRUST)}) FROM crm_contact")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_HELD} "
        "(cid VARCHAR, stage VARCHAR, since DATE, final INTEGER, changes INTEGER, changed BOOLEAN, "
        "dir INTEGER, reversals INTEGER)"
    )
    days = [as_of - dt.timedelta(days=7 * w) for w in range(weeks, -1, -1)]
    by_day: list[tuple[dt.date, dict[str, int]]] = []
    try:
        for day in days:
            # A view takes no parameters: the replayed day is a literal made by the builder.
            sql.run(con, sql.q(_REPLAY_CONTACTS, day=day))
            engine.compute(con, rules, day)  # the passes of a sync on that day; holds come from the history
            con.execute(f"""
CREATE OR REPLACE TEMP TABLE {_HELD} AS
SELECT cid, stage, since, final, changes + CAST(changed AS INTEGER) AS changes, changed,
  CASE WHEN changed THEN step ELSE dir END AS dir,
  reversals + CAST(changed AND dir <> 0 AND step <> dir AS INTEGER) AS reversals
FROM (
  SELECT p.cid, p.new_stage AS stage, p.new_since AS since, p.final, COALESCE(h.changes, 0) AS changes,
    COALESCE(h.final <> p.final, false) AS changed, COALESCE(sign(p.final - h.final), 0) AS step,
    COALESCE(h.dir, 0) AS dir, COALESCE(h.reversals, 0) AS reversals
  FROM {PLACE.name} p LEFT JOIN {_HELD} h ON h.cid = p.cid
)""")
            if day != days[0]:
                by_day.append((day, {str(o): int(n) for o, n in con.execute(_CHANGED_BY_OWNER).fetchall()}))
        totals = {str(o): (int(a), int(b), int(c)) for o, a, b, c in con.execute(_TOTALS_BY_OWNER).fetchall()}
    finally:
        con.execute("DROP VIEW IF EXISTS crm_contact")
        con.execute(str(view[0]))
        con.execute(f"DROP TABLE IF EXISTS {_CONTACT}")
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
