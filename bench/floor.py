"""The floor a sync's engine is measured against: one hand-written DuckDB query that places every contact of a
bench org on the default ladder, with its flags and since date, straight from the Task and Event tables.

It does what the engine does, minus everything that makes the engine a product: no rule file (the default rules'
kinds and criteria are written into the SQL, with the subject tests of `rules/ladder.yaml`, the Enhanced Email
direction, relations and date policy left out), no demotion grace, no texts, no plan and no write. Its since date
is the first activity day of the current rung's last run, judged on activity days only (not on the days a window
lets an activity go). So it is a lower bound: no sync can do its work for less.

    .venv/bin/python bench/floor.py bench/out/org-1000000/crm.duckdb [--as-of 2026-11-01]

Prints the query's CPU seconds (user + system of this process, DuckDB's threads included), wall seconds and how
many contacts it placed on each rung.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
from pathlib import Path

import duckdb

FLOOR = """
WITH act AS (
  SELECT "WhoId" AS cid, CAST("ActivityDate" AS DATE) AS day, "Subject" AS s, "TaskSubtype" AS st,
         "CallType" AS ct, "CallDurationInSeconds" AS secs, false AS ev
  FROM "Task" WHERE NOT COALESCE("IsDeleted", false) AND "WhoId" LIKE '003%' AND "ActivityDate" <= $as_of
  UNION ALL
  SELECT "WhoId", CAST("ActivityDateTime" AS DATE), "Subject", NULL, NULL, NULL, true
  FROM "Event" WHERE NOT COALESCE("IsDeleted", false) AND "WhoId" LIKE '003%'
        AND CAST("ActivityDateTime" AS DATE) <= $as_of AND NOT COALESCE("IsAllDayEvent", false)
),
kinds AS (
  SELECT cid, day,
    (st = 'Email' AND s LIKE 'Re:%') OR (st = 'Call' AND COALESCE(secs, 60) >= 60) OR ev AS conv,
    (st = 'Email' AND NOT s LIKE 'Re:%') OR (st = 'Call' AND COALESCE(ct, '') <> 'Inbound'
      AND COALESCE(secs, 60) < 60) AS outb,
    (ev OR (st = 'Call' AND COALESCE(secs, 600) >= 600))
      AND regexp_matches(lower(s), 'discovery|feedback session|check-in|check in|qbr|business review|interview|needs')
      AND NOT regexp_matches(lower(s), 'demo|pitch|presentation') AS listen,
    regexp_matches(lower(s), 'referral|referred|reference call|testimonial|case study')
      AND NOT s ILIKE '%thank%' AS advocacy,
    regexp_matches(lower(s), 'feedback|survey|suggestion|idea|input|complaint|concern|referral|introduc')
      AND NOT s ILIKE '%thank%' AS gave,
    s ILIKE '%thank%' AND NOT s LIKE 'Re:%' AS thanks
  FROM act
),
days AS (  -- one row per contact and activity day
  SELECT cid, CAST(day - DATE '1970-01-01' AS INT) AS dn,
    count(*) FILTER (WHERE conv) AS conv, count(*) FILTER (WHERE outb) AS outb,
    count(*) FILTER (WHERE listen) AS listen, count(*) FILTER (WHERE advocacy) AS adv,
    count(*) FILTER (WHERE gave) AS gave, count(*) FILTER (WHERE thanks) AS thanks
  FROM kinds GROUP BY ALL
),
windows AS (  -- the default rules' features on every activity day
  SELECT cid, dn,
    sum(conv) OVER w180 AS conv180, sum(listen) OVER w120 AS listen120, sum(listen) OVER w90 AS listen90,
    sum(outb) OVER w90 AS out90, sum(adv) OVER w365 AS adv365,
    min(CASE WHEN conv > 0 THEN dn END) OVER whole AS first_conv,
    (sum(conv) OVER q0 > 0)::INT + (sum(conv) OVER q1 > 0)::INT + (sum(conv) OVER q2 > 0)::INT AS q3,
    (sum(conv) OVER q0 > 0)::INT + (sum(conv) OVER q1 > 0)::INT + (sum(conv) OVER q2 > 0)::INT
      + (sum(conv) OVER q3 > 0)::INT + (sum(conv) OVER q4 > 0)::INT + (sum(conv) OVER q5 > 0)::INT AS q6,
    max(CASE WHEN gave > 0 THEN dn END) OVER whole > COALESCE(max(CASE WHEN thanks > 0 THEN dn END) OVER whole, -1)
      AS unthanked
  FROM days
  WINDOW whole AS (PARTITION BY cid ORDER BY dn ROWS UNBOUNDED PRECEDING),
    w90 AS (PARTITION BY cid ORDER BY dn RANGE 89 PRECEDING),
    w120 AS (PARTITION BY cid ORDER BY dn RANGE 119 PRECEDING),
    w180 AS (PARTITION BY cid ORDER BY dn RANGE 179 PRECEDING),
    w365 AS (PARTITION BY cid ORDER BY dn RANGE 364 PRECEDING),
    q0 AS (PARTITION BY cid ORDER BY dn RANGE 90 PRECEDING),
    q1 AS (PARTITION BY cid ORDER BY dn RANGE BETWEEN 181 PRECEDING AND 91 PRECEDING),
    q2 AS (PARTITION BY cid ORDER BY dn RANGE BETWEEN 272 PRECEDING AND 182 PRECEDING),
    q3 AS (PARTITION BY cid ORDER BY dn RANGE BETWEEN 363 PRECEDING AND 273 PRECEDING),
    q4 AS (PARTITION BY cid ORDER BY dn RANGE BETWEEN 454 PRECEDING AND 364 PRECEDING),
    q5 AS (PARTITION BY cid ORDER BY dn RANGE BETWEEN 545 PRECEDING AND 455 PRECEDING)
),
rungs AS (
  SELECT cid, dn, unthanked, listen90, out90,
    CASE
      WHEN conv180 >= 1 AND (conv180 >= 3 OR q3 >= 2) AND listen120 >= 1 AND dn - first_conv >= 365 AND q3 = 3
           AND NOT unthanked AND dn - first_conv >= 730 AND q6 = 6 AND adv365 >= 1 THEN 4
      WHEN conv180 >= 1 AND (conv180 >= 3 OR q3 >= 2) AND listen120 >= 1 AND dn - first_conv >= 365 AND q3 = 3
           AND NOT unthanked THEN 3
      WHEN conv180 >= 1 AND (conv180 >= 3 OR q3 >= 2) AND listen120 >= 1 THEN 2
      WHEN conv180 >= 1 THEN 1 ELSE 0 END AS r
  FROM windows
),
runs AS (
  SELECT *, r IS DISTINCT FROM lag(r) OVER (PARTITION BY cid ORDER BY dn) AS starts FROM rungs
)
SELECT c."Id",
  COALESCE(arg_max(r, dn), 0) AS rung,
  max(dn) FILTER (WHERE starts) AS since_dn,
  COALESCE(arg_max(unthanked, dn), false) AS missing_thanks,
  COALESCE(arg_max(out90 >= 3 AND listen90 = 0, dn), false) AS missing_listening
FROM "Contact" c LEFT JOIN runs ON runs.cid = c."Id"
WHERE NOT COALESCE(c."IsDeleted", false)
GROUP BY c."Id"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", type=Path)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    args = parser.parse_args()
    con = duckdb.connect(str(args.database), read_only=True)
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    con.execute(f"CREATE TEMP TABLE floor AS {FLOOR.replace('$as_of', 'CAST($as_of AS DATE)')}", {"as_of": args.as_of})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    rungs = dict(con.execute("SELECT rung, count(*) FROM floor GROUP BY 1 ORDER BY 1").fetchall())
    print(f"floor query: {cpu:.1f} CPU-s, {wall:.1f} s wall; contacts per rung {rungs}")


if __name__ == "__main__":
    main()
