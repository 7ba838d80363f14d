"""The timeline: every contact's rungs and flags over its whole history, computed once.

The rule it must keep: the rung and flags a contact's timeline shows on any day D are exactly what an evaluation with
`as_of = D` gives, and the rung it stands on (grace and decay included) depends only on its history up to D.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connector.crm.local.store import LocalCrm
from connector.engine import classify, evaluate, features, sql, timeline
from connector.ruleset.compiler import RuleSet, load
from tests.conftest import DEFAULT_RULES, ROOT, Org

EVERY_FEATURE = ROOT / "tests" / "spark" / "every_feature.yaml"


def _place(con: duckdb.DuckDBPyConnection, rules: RuleSet, day: dt.date) -> None:
    """The passes of a sync on `day`, keeping the timeline's own tables."""
    classify.classify(con, rules, day)
    features.build(con, rules, day)
    for stmt in timeline.statements(rules):
        sql.run(con, stmt, {"as_of": day})
    evaluate.evaluate(con, rules, day)


def _on_day(con: duckdb.DuckDBPyConnection, rules: RuleSet, day: dt.date) -> dict[str, tuple[Any, ...]]:
    """What the timeline (already built) shows on `day`: qualified rung, flags, rung stood on."""
    flags = ", ".join(f'q."g_{f.id}"' for f in rules.flags) or "NULL"
    rows = con.execute(
        f"""
        SELECT q.cid, q.qualified, [{flags}], r.r FROM (
          SELECT *, row_number() OVER (PARTITION BY cid ORDER BY dn DESC) AS n FROM tl_t_q
          WHERE dn <= ? - DATE '1970-01-01') q
        JOIN (SELECT *, row_number() OVER (PARTITION BY cid ORDER BY dn DESC, pt) AS n FROM tl_t_rung
              WHERE dn <= ? - DATE '1970-01-01') r ON r.cid = q.cid AND r.n = 1
        WHERE q.n = 1
        """,
        [day, day],
    ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def _evaluated(con: duckdb.DuckDBPyConnection, rules: RuleSet, day: dt.date) -> dict[str, tuple[Any, ...]]:
    """A fresh evaluation on `day`: the rung qualified for and the flags from that day's features, and the rung
    stood on from a timeline that ends that day."""
    _place(con, rules, day)
    flags = ", ".join(f'"g_{f.id}"' for f in rules.flags) or "NULL"
    rows = con.execute(f"SELECT cid, qualified, [{flags}], final FROM tl_place").fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


@pytest.mark.parametrize("rules_file", [DEFAULT_RULES, EVERY_FEATURE], ids=["default", "every_feature"])
def test_the_rung_on_any_day_is_what_an_evaluation_on_that_day_gives(org: Org, rules_file: Path) -> None:
    org.load_demo(contacts=200, seed=11)
    rules = load(rules_file)
    crm = LocalCrm.open(org.database)
    try:
        crm.prepare(org.config.fields)
        con = crm.con
        _place(con, rules, org.as_of)
        rng = random.Random(5)  # noqa: S311 - a fixed sample of days, not a secret
        picked = {org.as_of - dt.timedelta(days=rng.randrange(1, 1100)) for _ in range(4)}
        # Where the timeline changes is where it can be wrong: some of its change days, and the day before each.
        changes = [
            r[0] for r in con.execute("SELECT DISTINCT as_of FROM tl_t_pts WHERE as_of < ?", [org.as_of]).fetchall()
        ]
        for day in rng.sample(sorted(changes), 8):
            picked |= {day, day - dt.timedelta(days=1)}
        days = sorted(picked)
        seen = {d: _on_day(con, rules, d) for d in days}
        for day in days:
            fresh = _evaluated(con, rules, day)
            timeline_day = seen[day]
            differ = [cid for cid, v in fresh.items() if timeline_day.get(cid, (0, [False] * len(rules.flags), 0)) != v]
            assert not differ, (day, differ[:5], [(fresh[c], timeline_day.get(c)) for c in differ[:5]])
    finally:
        crm.close()
