"""The engine: set-based passes over the relations a CRM backend exposes (`crm_contact`, `crm_activity`).

classify -> features (on the evaluation day) and timeline (every contact's rungs and flags over its whole history:
since, holds, flag ages) -> evaluate (flags, rung, since, next step and reason) -> plan.
Every statement is a sqlglot tree made in `engine.sql`; each pass's output is declared in `engine.relations`.
The connection is locked (`engine.session`) before the first rule-derived statement runs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from connector.ruleset.compiler import RuleSet


def compute(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    *,
    contact_id: str | None = None,
    cache: Any | None = None,
) -> int:
    """Place every contact (or one) on the ladder into `tl_place`; returns how many activities were classified.

    `cache`: the timeline rows the state store keeps for these rules (`Store.timeline_cache`, {} for none yet):
    only contacts whose history changed, or whose next change day has come, are computed, and their rows are left
    in `tl_timeline_new` for the caller to keep. None: every contact is computed and nothing is left."""
    # The passes import the rule compiler, which imports engine.sql and engine.relations: importing them here, not
    # at the top, lets `connector.ruleset.compiler` be imported first without a cycle.
    from connector.engine import classify, evaluate, features, session, sql, timeline  # noqa: PLC0415

    cached = cache is not None and contact_id is None
    if cached:
        timeline.load_cache(con, cache)
    session.lock(con)
    kept = classify.classify(con, rules, as_of, contact_id=contact_id)
    features.build(con, rules, as_of, contact_id=contact_id)
    params = {"as_of": as_of}
    if cached:  # in batches of contacts, so a first sync of a large org fits its memory limit
        head, body, tail = timeline.cached_parts(rules)
        for stmt in head:
            sql.run(con, stmt, params)
        todo = int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(timeline.TODO_ALL))))
        batches = max(1, -(-todo // timeline.BATCH))
        for i in range(batches):
            for stmt in [timeline.batch(batches, i), *body, timeline.collect(first=i == 0)]:
                sql.run(con, stmt, params)
        for stmt in tail:
            sql.run(con, stmt, params)
    else:
        for stmt in timeline.statements(rules):
            sql.run(con, stmt, params)
    evaluate.evaluate(con, rules, as_of)
    for name in timeline.scratch(rules):
        sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(name)))
    return kept
