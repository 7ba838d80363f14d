"""The engine: set-based passes over the relations a CRM backend exposes (`crm_contact`, `crm_activity`).

classify -> features (on the evaluation day) and timeline (every contact's rungs and flags over its whole history:
since, holds, flag ages) -> evaluate (flags, rung, since, next step and reason) -> plan.
Every statement is a sqlglot tree made in `connector.sql`; each pass's output is declared in `engine.relations`.
The connection is locked (`engine.session`) before the first rule-derived statement runs.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    from connector.engine.scope import ActivitiesOf
    from connector.ruleset.compiler import RuleSet


def compute(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    as_of: dt.date,
    *,
    contact_id: str | None = None,
    cache: Any | None = None,
    owned: frozenset[str] = frozenset(),
    written: frozenset[str] | None = None,
    everyone: bool = False,
    activities_of: ActivitiesOf | None = None,
) -> int:
    """Place every contact (or one) on the ladder into `tl_place`; returns how many activities were classified.

    `cache`: the timeline rows the state store keeps for these rules (`Store.timeline_cache`, {} for none yet):
    only contacts whose history changed, or whose next change day has come, are computed, and their rows are left
    in `tl_timeline_new` for the caller to keep (connector.engine.scope), and `tl_standing` shows every contact.
    `owned`: the Contact fields this tool writes, which say nothing of a contact's history; `written`: those in use,
    by [fields] key (None: all). `everyone`: compute
    every contact all the same (the follow-up tasks are planned from every contact's placement). None: every
    contact is computed and nothing is left."""
    # The passes import the rule compiler, which imports engine.relations: importing them here, not at the top,
    # lets `connector.ruleset.compiler` be imported first without a cycle.
    from connector import sql  # noqa: PLC0415
    from connector.engine import classify, evaluate, features, relations, scope, session, timeline  # noqa: PLC0415

    cached = cache is not None and contact_id is None
    params = {"as_of": as_of}
    if not cached:
        session.lock(con)
        kept = classify.classify(con, rules, as_of, contact_id=contact_id)
        features.build(con, rules, as_of, contact_id=contact_id)
        sql.run_each(con, timeline.rendered(rules, answered=features.answered_tables(rules)), params)
        evaluate.evaluate(con, rules, as_of)
    else:
        timeline.load_cache(con, cache)
        session.lock(con)
        sql.run(con, scope.fingerprints(con, owned, written), params)
        sql.run(con, scope.todo(everyone=everyone), params)
        with scope.narrowed(
            con, activities_of
        ):  # only the contacts that need it are read, classified, placed and planned
            kept = classify.classify(con, rules, as_of, lean=True)
            features.build(con, rules, as_of)
            pooled, body, tail = timeline.cached_rendered(rules, answered=features.answered_tables(rules))
            todo = int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(timeline.TODO_ALL))))
            batches = max(1, -(-todo // timeline.BATCH))  # a first sync of a large org, in batches that fit memory
            sql.run_each(con, pooled, params)
            # The batches read the pooled tables: the classified activities' memory is theirs from here on.
            sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(relations.CLASSIFIED.name)))
            for i in range(batches):
                sql.run(con, timeline.batch(batches, i), params)
                sql.run_each(con, body, params)
                sql.run(con, timeline.collect(first=i == 0), params)
            # The few contacts the lookahead cannot settle, once more in full.
            sql.run_each(con, timeline.unsure(), params)
            if sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(timeline.TODO))):
                _, again, _ = timeline.cached_rendered(rules, ahead=False)
                sql.run_each(con, again, params)
                sql.run(con, timeline.collect(first=False), params)
            sql.run_each(con, tail, params)
            evaluate.evaluate(con, rules, as_of)
        sql.run(con, scope.standing(rules))
    sql.run_each(con, timeline.dropped(rules))
    return kept
