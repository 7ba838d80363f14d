"""Since when: the date a contact reached its rung, read from its history rather than from the day of the sync.

For the contacts whose rung is new to the CRM (a first sync, a rule edit that moves them, a promotion by an activity
logged late), the rules are replayed over their own history, set-based: each contact is evaluated again on the days
of its classified activities (the days a rung can be gained) within `HORIZON_DAYS`, at most `MAX_POINTS` of them, by
the very passes of a sync, retargeted at copies keyed `<contact>@<day>` in which every `$as_of` is the row's own
day. The since date is then the first of those days from which the contact has qualified for its rung without a
break. A demotion keeps the day it takes effect (the sync's own date): that is when the contact came down.
"""

from __future__ import annotations

import datetime as dt

import duckdb

from connector.engine import evaluate, features, sql
from connector.engine.relations import BASE, CLASSIFIED, CONTACTS, FEATURES, PLACE, UNANSWERED, WATCH
from connector.ruleset.compiler import RuleSet

HORIZON_DAYS = 1095  # three years back
MAX_POINTS = 16  # the most recent activity days a contact is re-evaluated on

_TABLES = {
    CLASSIFIED.name: "tl_h_act",
    CONTACTS.name: "tl_h_contact",
    BASE.name: "tl_h_base",
    UNANSWERED.name: "tl_h_unans",
    FEATURES.name: "tl_h_feat",
    PLACE.name: "tl_h_place",
    WATCH.name: "tl_h_watch",
}

# Who needs a history: a rung new to the CRM, except a demotion that the grace period has run out on.
_NEEDED = """
CREATE OR REPLACE TEMP TABLE tl_h_need AS
SELECT cid, final FROM $place
WHERE held IS NULL OR (final <> held AND (final > held OR cur_version IS DISTINCT FROM $version))
"""
_POINTS = """
CREATE OR REPLACE TEMP TABLE tl_h_points AS
SELECT cid, day AS as_of FROM (
  SELECT a.cid, a.day, row_number() OVER (PARTITION BY a.cid ORDER BY a.day DESC) AS n
  FROM (SELECT DISTINCT cid, day FROM $act) a JOIN tl_h_need USING (cid)
  WHERE a.day < $as_of AND a.day > $as_of - $horizon
) WHERE n <= $max_points
"""
_ACT = """
CREATE OR REPLACE TEMP TABLE tl_h_act AS
SELECT a.* EXCLUDE (cid), p.cid || '@' || CAST(p.as_of AS VARCHAR) AS cid, p.as_of
FROM $act a JOIN tl_h_points p ON a.cid = p.cid WHERE a.day <= p.as_of
"""
_CONTACT = """
CREATE OR REPLACE TEMP TABLE tl_h_contact AS
SELECT c.* EXCLUDE ("Id", cur_stage, cur_since, cur_flags, cur_next, cur_reason, cur_version),
       p.cid || '@' || CAST(p.as_of AS VARCHAR) AS "Id", CAST(NULL AS VARCHAR) AS cur_stage,
       CAST(NULL AS DATE) AS cur_since, CAST(NULL AS VARCHAR) AS cur_flags, CAST(NULL AS VARCHAR) AS cur_next,
       CAST(NULL AS VARCHAR) AS cur_reason, CAST(NULL AS VARCHAR) AS cur_version, p.as_of
FROM $contacts c JOIN tl_h_points p ON c."Id" = p.cid
"""
_WATCH = "CREATE OR REPLACE TEMP TABLE tl_h_watch (cid VARCHAR, from_rung INTEGER, failing_since DATE)"
# The first day of the unbroken run of days on which the contact qualified for its rung (for the lowest rung: the
# first day after it last stood higher), else the sync's own day.
_SINCE = """
UPDATE tl_place SET new_since = s.since
FROM (
  SELECT n.cid, CASE
      WHEN n.final > 0 THEN min(h.as_of) FILTER (WHERE h.qualified >= n.final
                                                 AND h.as_of > COALESCE(r.last_below, $origin))
      WHEN r.last_above IS NOT NULL THEN min(h.as_of) FILTER (WHERE h.qualified = 0 AND h.as_of > r.last_above)
      ELSE LEAST(CAST(c."CreatedDate" AS DATE), $as_of)
    END AS since
  FROM tl_h_need n
  LEFT JOIN tl_h_hist h ON h.cid = n.cid
  LEFT JOIN tl_h_runs r ON r.cid = n.cid
  LEFT JOIN $contacts c ON c."Id" = n.cid
  GROUP BY n.cid, n.final, r.last_below, r.last_above, c."CreatedDate"
) s
WHERE tl_place.cid = s.cid AND s.since IS NOT NULL
"""
# Per contact: the last replayed day it stood below its rung, and the last day it stood above the lowest rung.
_RUNS = """
CREATE OR REPLACE TEMP TABLE tl_h_runs AS
SELECT n.cid, max(h.as_of) FILTER (WHERE h.qualified < n.final) AS last_below,
       max(h.as_of) FILTER (WHERE h.qualified > 0) AS last_above
FROM tl_h_need n JOIN tl_h_hist h ON h.cid = n.cid GROUP BY n.cid
"""
_HIST = """
CREATE OR REPLACE TEMP TABLE tl_h_hist AS
SELECT split_part(cid, '@', 1) AS cid, as_of, qualified FROM tl_h_place
"""


def since_from_history(con: duckdb.DuckDBPyConnection, rules: RuleSet, as_of: dt.date) -> int:
    """Set `new_since` in `tl_place` from each moving contact's history; returns how many were replayed."""
    params = {"as_of": as_of}
    place = sql.table(PLACE.name)
    sql.run(con, sql.q(_NEEDED, place=place, version=rules.version))
    sql.run(con, sql.q(_POINTS, act=sql.table(CLASSIFIED.name), horizon=HORIZON_DAYS, max_points=MAX_POINTS), params)
    sql.run(con, sql.q(_ACT, act=sql.table(CLASSIFIED.name)))
    sql.run(con, sql.q(_CONTACT, contacts=sql.table(CONTACTS.name)))
    sql.run(con, sql.q(_WATCH))
    for stmt in [*features.statements(rules, replay=True), evaluate.statement(rules, texts_too=False)]:
        sql.run(con, sql.retarget(stmt, _TABLES, as_of_column="as_of"))
    sql.run(con, sql.q(_HIST))
    sql.run(con, sql.q(_RUNS))
    sql.run(con, sql.q(_SINCE, contacts=sql.table(CONTACTS.name), origin=dt.date(1, 1, 1)), params)
    replayed = int(sql.scalar(con, sql.q("SELECT count(DISTINCT cid) FROM tl_h_points")))
    for name in (
        "tl_h_act",
        "tl_h_contact",
        "tl_h_base",
        "tl_h_unans",
        "tl_h_feat",
        "tl_h_place",
        "tl_h_hist",
        "tl_h_runs",
    ):
        sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(name)))
    return replayed
