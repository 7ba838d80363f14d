"""Since when, and held since when: a contact's rung and grace period read from its history, not from the sync day.

For the contacts whose rung is new to the CRM (a first sync, a rule edit that moves them, a promotion by an activity
logged late), the rules are replayed over their own history, set-based: each contact is evaluated again on the days
of its classified activities (the days a rung can be gained) within `HORIZON_DAYS`, at most `MAX_POINTS` of them, by
the very passes of a sync, retargeted at copies keyed `<contact>@<day>` in which every `$as_of` is the row's own
day. The since date is then the first of those days from which the contact has qualified for its rung without a
break. A demotion keeps the day it takes effect (the sync's own date): that is when the contact came down.

The demotion grace works from the same history. A contact with no watch yet (a first sync, or a rule edit that
leaves it below the rung the CRM shows) whose replay shows it on a higher rung at the start of the grace period or
within it is replayed once more on each day of the last `demotion_grace_days` (at most `GRACE_POINTS`) that follows
a replayed day on which it stood that high, up to the next replayed day: a rung is lost between activities, as
windows slide. It is then held as a running ladder would hold it: on the highest rung
it qualified for on one of those days (after a rule edit: the rung the CRM shows), failing since the day after the
last day it did. A slip older than the grace period seeds nothing: a first sync places the contact where it
qualifies, and a rule edit gives it a whole grace period from the day of the sync, as before.

So the placement runs in two evaluations: the rungs alone (what the replay needs to know who moves), then, with
the watch the history seeded, the full placement with its texts. `statements` is that sequence, run as it is by
DuckDB (engine.compute) and by Spark (engine.spark, which turns the one UPDATE into a join).
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from connector.engine import evaluate, features, sql
from connector.engine.relations import BASE, CLASSIFIED, CONTACTS, FEATURES, PLACE, UNANSWERED, WATCH
from connector.ruleset.compiler import RuleSet

HORIZON_DAYS = 1095  # three years back
MAX_POINTS = 16  # the most recent activity days a contact is re-evaluated on
GRACE_POINTS = 92  # the most days of a grace period a slipping contact is re-evaluated on, one by one

_TABLES = {
    CLASSIFIED.name: "tl_h_act",
    CONTACTS.name: "tl_h_contact",
    BASE.name: "tl_h_base",
    UNANSWERED.name: "tl_h_unans",
    FEATURES.name: "tl_h_feat",
    PLACE.name: "tl_h_place",
    WATCH.name: "tl_h_watch",
}
# The watch the full placement reads: the state store's, and the holds seeded from history.
HELD = "tl_h_held"

# Who needs a history: `moved`, a rung new to the CRM, except a demotion that the grace period has run out on;
# `may_hold`, a contact with no watch whose grace period may have started in its history.
_NEEDED = """
CREATE OR REPLACE TEMP TABLE tl_h_need AS
SELECT cid, qualified, held, moved, may_hold FROM (
  SELECT cid, qualified, held,
    (held IS NULL OR (final <> held AND (final > held OR cur_version IS DISTINCT FROM $version))) AS moved,
    ($grace > 0 AND w_from_stored IS NULL AND qualified < $top
     AND (held IS NULL OR (qualified < held AND cur_version IS DISTINCT FROM $version))) AS may_hold
  FROM $place
) n WHERE moved OR may_hold
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
FROM $act a JOIN $points p ON a.cid = p.cid WHERE a.day <= p.as_of
"""
_CONTACT = """
CREATE OR REPLACE TEMP TABLE tl_h_contact AS
SELECT c.* EXCLUDE ("Id", cur_stage, cur_since, cur_flags, cur_next, cur_reason, cur_version),
       p.cid || '@' || CAST(p.as_of AS VARCHAR) AS "Id", CAST(NULL AS VARCHAR) AS cur_stage,
       CAST(NULL AS DATE) AS cur_since, CAST(NULL AS VARCHAR) AS cur_flags, CAST(NULL AS VARCHAR) AS cur_next,
       CAST(NULL AS VARCHAR) AS cur_reason, CAST(NULL AS VARCHAR) AS cur_version, p.as_of
FROM $contacts c JOIN $points p ON c."Id" = p.cid
"""
_WATCH = """
CREATE OR REPLACE TEMP TABLE tl_h_watch AS
SELECT CAST(NULL AS VARCHAR) AS cid, CAST(NULL AS INTEGER) AS from_rung, CAST(NULL AS DATE) AS failing_since
WHERE false
"""
_HIST = "CREATE OR REPLACE TEMP TABLE $hist AS SELECT split_part(cid, '@', 1) AS cid, as_of, qualified FROM tl_h_place"
# Where a contact may be slipping: the gaps between replayed days that follow a day on which it stood at or above
# the rung to hold (the CRM's, else any above the one it qualifies for), from the last replayed day before the grace
# period on. Between activities a rung can only be lost as windows slide, so its last day is in one of these gaps.
_SLIPPING = """
CREATE OR REPLACE TEMP TABLE tl_h_slip AS
SELECT h.cid, h.as_of AS gap_from, h.gap_to FROM (
  SELECT cid, as_of, qualified,
         max(CASE WHEN as_of <= $as_of - $grace THEN as_of END) OVER (PARTITION BY cid) AS entering,
         COALESCE(lead(as_of) OVER (PARTITION BY cid ORDER BY as_of), $as_of) AS gap_to
  FROM tl_h_hist_a
) h JOIN tl_h_need n ON n.cid = h.cid
WHERE n.may_hold AND h.as_of >= COALESCE(h.entering, h.as_of) AND h.qualified >= COALESCE(n.held, n.qualified + 1)
"""
_DAYS = """
CREATE OR REPLACE TEMP TABLE tl_h_days AS
SELECT s.cid, $as_of - d.k AS as_of FROM tl_h_slip s CROSS JOIN $offsets
WHERE $as_of - d.k > s.gap_from AND $as_of - d.k < s.gap_to
"""
_ALL_HIST = "CREATE OR REPLACE TEMP TABLE tl_h_hist AS SELECT * FROM tl_h_hist_a UNION ALL SELECT * FROM tl_h_hist_b"
# The rung to hold: the highest qualified for on a day of the grace period (after a rule edit, the CRM's rung).
_TOP = """
CREATE OR REPLACE TEMP TABLE tl_h_top AS
SELECT n.cid, COALESCE(n.held, max(h.qualified)) AS from_rung
FROM tl_h_need n JOIN (SELECT DISTINCT cid FROM tl_h_slip) s ON s.cid = n.cid JOIN tl_h_hist h ON h.cid = n.cid
WHERE h.as_of >= $as_of - $grace AND h.as_of < $as_of
GROUP BY n.cid, n.held, n.qualified
HAVING max(h.qualified) >= COALESCE(n.held, n.qualified + 1)
"""
# Failing since the day after the last day it qualified for that rung.
_SEED = """
CREATE OR REPLACE TEMP TABLE tl_h_seed AS
SELECT t.cid, t.from_rung, CAST(max(h.as_of) + 1 AS DATE) AS failing_since
FROM tl_h_top t JOIN tl_h_hist h ON h.cid = t.cid
WHERE h.qualified >= t.from_rung AND h.as_of < $as_of
GROUP BY t.cid, t.from_rung
"""
_HELD = """
CREATE OR REPLACE TEMP TABLE $held AS
SELECT cid, from_rung, failing_since FROM $watch WHERE failing_since <= $as_of
UNION ALL SELECT cid, from_rung, failing_since FROM tl_h_seed
"""
# Per moving contact, from the full placement: its rung; the last replayed day it stood below it before the rung
# it holds began to fail (all days, when it is not held); the last day it stood above the lowest rung.
_RUNS = """
CREATE OR REPLACE TEMP TABLE tl_h_runs AS
SELECT n.cid, p.final,
       max(h.as_of) FILTER (WHERE h.qualified < p.final
                            AND h.as_of < CASE WHEN p.final > p.qualified THEN p.w_since ELSE $as_of END) AS last_below,
       max(h.as_of) FILTER (WHERE h.qualified > 0) AS last_above
FROM tl_h_need n JOIN $place p ON p.cid = n.cid LEFT JOIN tl_h_hist h ON h.cid = n.cid
WHERE n.moved
GROUP BY n.cid, p.final
"""
# The first day of the unbroken run of days on which the contact qualified for its rung (for the lowest rung: the
# first day after it last stood higher), else the sync's own day.
_SINCE = """
UPDATE tl_place SET new_since = s.since
FROM (
  SELECT r.cid, CASE
      WHEN r.final > 0 THEN min(h.as_of) FILTER (WHERE h.qualified >= r.final
                                                 AND h.as_of > COALESCE(r.last_below, $origin))
      WHEN r.last_above IS NOT NULL THEN min(h.as_of) FILTER (WHERE h.qualified = 0 AND h.as_of > r.last_above)
      ELSE LEAST(CAST(c."CreatedDate" AS DATE), $as_of)
    END AS since
  FROM tl_h_runs r
  LEFT JOIN tl_h_hist h ON h.cid = r.cid
  LEFT JOIN $contacts c ON c."Id" = r.cid
  GROUP BY r.cid, r.final, r.last_below, r.last_above, c."CreatedDate"
) s
WHERE tl_place.cid = s.cid AND s.since IS NOT NULL
"""
SCRATCH = (
    "tl_h_need",
    "tl_h_points",
    "tl_h_days",
    "tl_h_slip",
    "tl_h_act",
    "tl_h_contact",
    "tl_h_base",
    "tl_h_unans",
    "tl_h_feat",
    "tl_h_place",
    "tl_h_watch",
    "tl_h_hist_a",
    "tl_h_hist_b",
    "tl_h_hist",
    "tl_h_top",
    "tl_h_seed",
    "tl_h_held",
    "tl_h_runs",
)


def _replay(rules: RuleSet, points: str, hist: str) -> list[exp.Expr]:
    """Evaluate the rungs of each contact of `points` on each of its days, into `hist` (cid, as_of, qualified)."""
    act = sql.table(CLASSIFIED.name)
    out = [
        sql.q(_ACT, act=act, points=sql.table(points)),
        sql.q(_CONTACT, contacts=sql.table(CONTACTS.name), points=sql.table(points)),
    ]
    out += [
        sql.retarget(stmt, _TABLES, as_of_column="as_of")
        for stmt in [*features.statements(rules, replay=True), evaluate.statement(rules, texts_too=False)]
    ]
    out.append(sql.q(_HIST, hist=sql.table(hist)))
    return out


def _offsets(days: int) -> exp.Expr:
    """`(VALUES (1), ..., (days)) AS d(k)`: the days back from as_of a slipping contact is evaluated on."""
    return exp.Values(
        expressions=[exp.Tuple(expressions=[sql.lit(k)]) for k in range(1, days + 1)],
        alias=exp.TableAlias(this=sql.ident("d"), columns=[sql.ident("k")]),
    )


def statements(rules: RuleSet) -> list[exp.Expr]:
    """From the features to `tl_place`: the rungs alone, the history replay and its holds, the full placement,
    and the since dates (the last statement, an UPDATE of `tl_place`). `$as_of` is the only parameter."""
    grace = rules.settings.demotion_grace_days
    place = sql.table(PLACE.name)
    act = sql.table(CLASSIFIED.name)
    top = len(rules.rungs) - 1
    return [
        evaluate.statement(rules, texts_too=False),
        sql.q(_NEEDED, place=place, version=rules.version, grace=grace, top=top),
        sql.q(_POINTS, act=act, horizon=HORIZON_DAYS, max_points=MAX_POINTS),
        sql.q(_WATCH),
        *_replay(rules, "tl_h_points", "tl_h_hist_a"),
        sql.q(_SLIPPING, grace=grace),
        sql.q(_DAYS, offsets=_offsets(max(1, min(grace, GRACE_POINTS)))),
        *_replay(rules, "tl_h_days", "tl_h_hist_b"),
        sql.q(_ALL_HIST),
        sql.q(_TOP, grace=grace),
        sql.q(_SEED),
        sql.q(_HELD, held=sql.table(HELD), watch=sql.table(WATCH.name)),
        sql.retarget(evaluate.statement(rules), {WATCH.name: HELD}),
        sql.q(_RUNS, place=place),
        sql.q(_SINCE, contacts=sql.table(CONTACTS.name), origin=dt.date(1, 1, 1)),
    ]
