"""The rung stood on (grace and decay read from the history), the evaluation day's row, and the rung on
given days."""

from __future__ import annotations

from sqlglot import exp

from connector import sql
from connector.engine.relations import (
    TIMELINE,
    flag_col,
    flag_since_col,
)
from connector.engine.timeline._base import (
    NOW,
    RUNG_BITS,
    RUNGS,
    STATES,
    TODO,
    _date,
    _dn,
    _over,
    _todo_contacts,
    _values,
    _window,
)
from connector.engine.timeline._states import (
    _signatures,
)
from connector.ruleset.compiler import RuleSet


def _steps(elapsed: exp.Expr, rules: RuleSet) -> exp.Expr:
    """How many rungs a held rung has dropped `elapsed` days after it was last met: none within the grace period,
    then one, and one more every decay period (without decay: all of them)."""
    grace = rules.settings.demotion_grace_days
    every = rules.settings.decay_every_days
    after = sql.q("1 + ($x - $g) // $e", x=elapsed.copy(), g=grace, e=every) if every else sql.lit(len(rules.rungs))
    return sql.q("CASE WHEN $x < $g THEN 0 ELSE $after END", x=elapsed, g=grace, after=after)


def _drops(rules: RuleSet) -> exp.Expr:
    """The days a held rung drops: for each run of days on which a contact met rung k, ending on day b, the days
    b + 1 + grace + m x decay, until it has dropped k rungs."""
    grace = rules.settings.demotion_grace_days
    every = rules.settings.decay_every_days
    top = len(rules.rungs) - 1
    pairs = [(k, m) for k in range(1, top + 1) for m in (range(k) if every else range(1))]
    if not pairs:
        return sql.create_temp("tl_t_drop", sql.q("SELECT cid, dn FROM $s WHERE false", s=sql.table(STATES)))
    runs = sql.q(
        "SELECT cid, dn, qualified, lead(dn) OVER (PARTITION BY cid ORDER BY dn) AS nd, "
        "lead(qualified) OVER (PARTITION BY cid ORDER BY dn) AS next_q FROM $s WHERE qchg",
        s=sql.table(STATES),
    )
    body = (
        exp.select(sql.col("cid", "s"), sql.alias(sql.q("s.nd + $g + x.m * $e", g=grace, e=every or 0), "dn"))
        .from_(exp.Subquery(this=runs, alias=exp.TableAlias(this=sql.ident("s"))))
        .join(_values(pairs, "x", ["k", "m"]), join_type="cross")
        .where(sql.q("s.nd IS NOT NULL AND s.qualified >= x.k AND s.next_q < x.k"))
    )
    return sql.create_temp("tl_t_drop", body)


def _rungs(rules: RuleSet) -> exp.Expr:
    """The rung a contact stands on at each point and each day a held rung drops: the highest of the rung it
    qualifies for and, for each rung it met before, that rung less the steps it has dropped since."""
    top = len(rules.rungs) - 1
    grace = rules.settings.demotion_grace_days
    both = sql.q(
        "SELECT cid, dn, 1 AS pt, dn * $bits + qualified AS enc FROM $s WHERE qchg OR dn = $today "
        "UNION ALL SELECT cid, dn, 0 AS pt, CAST(NULL AS BIGINT) AS enc FROM tl_t_drop",
        bits=RUNG_BITS,
        s=sql.table(STATES),
        today=_dn(sql.as_of()),
    )
    pt_first = exp.Ordered(this=sql.col("pt"), desc=True)
    carried = sql.q(
        "$m % $bits",
        m=_window(exp.Max(this=sql.col("enc")), "ROWS", None, None, order=[pt_first.copy()]),
        bits=RUNG_BITS,
    )
    level1 = exp.select(
        sql.col("cid"),
        sql.col("dn"),
        sql.col("pt"),
        sql.alias(carried, "q"),
        sql.alias(_over(exp.Lead(this=sql.col("dn")), order=[pt_first.copy()]), "nd"),
    ).from_(exp.Subquery(this=both, alias=exp.TableAlias(this=sql.ident("b"))))
    last_met = []
    for k in range(1, top + 1):
        met = sql.q("CASE WHEN q >= $k THEN nd - 1 END", k=k)
        spec = exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end=sql.lit(1), end_side="PRECEDING"
        )
        w = exp.Window(
            this=exp.Max(this=met),
            partition_by=[sql.col("cid")],
            order=exp.Order(expressions=[exp.Ordered(this=sql.col("dn"), nulls_first=False), pt_first.copy()]),
            spec=spec,
        )
        last_met.append(sql.alias(w, f"lm_{k}"))
    level2 = exp.select(exp.Star(), *last_met).from_(level1.subquery("l1", copy=False), copy=False)
    shadows = [
        sql.q(
            "CASE WHEN $lm IS NULL THEN 0 ELSE GREATEST($k - $steps, 0) END",
            lm=sql.col(f"lm_{k}"),
            k=k,
            steps=_steps(sql.q("dn - $lm - 1", lm=sql.col(f"lm_{k}")), rules),
        )
        for k in range(1, top + 1)
    ]
    rung = exp.Greatest(this=sql.col("q"), expressions=shadows, ignore_nulls=True) if shadows else sql.col("q")
    graced = sql.any_of(
        sql.q("$k = r AND $lm IS NOT NULL AND dn - $lm - 1 < $g", k=k, lm=sql.col(f"lm_{k}"), g=grace)
        for k in range(1, top + 1)
    )
    level3 = exp.select(exp.Star(), sql.alias(rung, "r")).from_(level2.subquery("l2", copy=False), copy=False)
    level4 = exp.select(exp.Star(), sql.alias(exp.and_(sql.q("r > q"), exp.paren(graced)), "in_grace")).from_(
        level3.subquery("l3", copy=False), copy=False
    )
    return sql.create_temp(RUNGS, level4)


def _now(rules: RuleSet, *, cached: bool = False, lookahead: int | None = None) -> exp.Expr:
    """One row per contact: where the timeline stands on the evaluation day, since when, the rung before that
    (for a trend), and what comes next if nothing happens (the day a held rung drops, the next day anything a
    record shows can change).

    With a `lookahead`, the last point may stand for every point past it (engine.timeline._points): what the
    timeline shows up to that day is exact, what comes after it unknown. So that day is the next change day at
    the latest, and a held contact whose drop is not seen by then (it qualifies again on its own) is `unsure`:
    the caller computes it again without a lookahead."""
    today = _dn(sql.as_of())
    sigs = len(_signatures(rules))
    differs = sql.any_of(
        exp.NEQ(this=sql.col(f"sig_{i}", "q"), expression=sql.col(f"sig_{i}", "t")) for i in range(sigs)
    )
    flag_cols = [sql.col(flag_col(f.id), "t") for f in rules.flags]
    closed = [
        sql.alias(
            sql.q(
                "max(CASE WHEN NOT $g AND q.dn <= $today THEN q.nd END)", g=sql.col(flag_col(f.id), "q"), today=today
            ),
            f"fo_{f.id}",
        )
        for f in rules.flags
    ]
    states = (
        exp.select(
            sql.col("cid", "q"),
            *flag_cols,
            sql.alias(sql.q("min(q.dn)"), "first_dn"),
            sql.alias(sql.q("max(q.dn)"), "last_dn"),
            sql.alias(
                exp.Filter(
                    this=sql.q("min(q.dn)"), expression=exp.Where(this=exp.and_(sql.q("q.dn > $t", t=today), differs))
                ),
                "next_state",
            ),
            *closed,
        )
        .from_(exp.alias_(sql.table(STATES), "q"))
        .join(exp.alias_(sql.table(STATES), "t"), on=sql.q("t.cid = q.cid AND t.dn = $t", t=today))
        .group_by(sql.col("cid", "q"), *(c.copy() for c in flag_cols))
    )
    flag_since = [
        sql.alias(
            sql.q(
                "CASE WHEN $g THEN $d END",
                g=sql.col(flag_col(f.id), "s"),
                d=_date(sql.q("COALESCE($o, s.first_dn)", o=sql.col(f"fo_{f.id}", "s"))),
            ),
            flag_since_col(f.id),
        )
        for f in rules.flags
    ]
    recheck: exp.Expr = exp.null()
    extra: list[exp.Expr] = []
    if lookahead is not None:
        edge = sql.q("$today + $n", today=today.copy(), n=lookahead)
        recheck = sql.q("CASE WHEN s.last_dn > $edge THEN s.last_dn END", edge=edge)
        unsure = "r.r > r.q AND s.last_dn > $edge AND (h.drop_dn IS NULL OR h.drop_dn > s.last_dn)"
        extra.append(sql.alias(sql.q(unsure, edge=edge.copy()), "unsure"))
    elif cached:  # the rows of every batch have the same columns
        extra.append(sql.alias(exp.false(), "unsure"))
    body = sql.q(
        """
        SELECT $cid AS cid, r.r AS final, r.q AS qualified_now, r.in_grace,
               CASE WHEN s.first_dn = $today THEN NULL ELSE $since END AS since,
               $held AS held_until, $next AS next_change, h.prev_r AS previous
        FROM $rungs r
        JOIN (SELECT a.cid,
                     max(CASE WHEN a.r <> b.r AND a.dn < $today THEN a.nd END) AS began,
                     min(a.dn) FILTER (WHERE a.dn > $today AND a.r < b.r) AS drop_dn,
                     min(a.dn) FILTER (WHERE a.dn > $today AND a.r <> b.r) AS move_dn,
                     arg_max(a.r, a.dn * 2 + a.pt) FILTER (WHERE a.r <> b.r AND a.dn < $today) AS prev_r
              FROM $rungs a JOIN $rungs b ON b.cid = a.cid AND b.dn = $today AND b.pt = 1
              GROUP BY a.cid) h ON h.cid = r.cid
        JOIN ($states) s ON s.cid = r.cid
        {ids}
        WHERE r.dn = $today AND r.pt = 1
        """.replace("{ids}", "JOIN $todo i ON i.k = r.cid" if cached else ""),  # a batch's cid is its number
        cid=sql.col("cid", "i" if cached else "r"),
        todo=sql.table(TODO),
        today=today,
        since=_date(sql.q("COALESCE(h.began, s.first_dn)")),
        held=sql.q("CASE WHEN r.r > r.q THEN $d END", d=_date(sql.col("drop_dn", "h"))),
        next=_date(sql.q("LEAST(s.next_state, h.move_dn, $recheck)", recheck=recheck)),
        rungs=sql.table(RUNGS),
        states=states,
    )
    assert isinstance(body, exp.Select)
    body = body.select(*flag_since, *extra, append=True)
    return sql.create_temp(NOW if cached else TIMELINE.name, body)


ON_DAYS = "tl_t_on_days"  # per day of `days` and contact created by then: the rung it stood on
_ON_DAYS = """
SELECT w.k, w.day, c."Id" AS cid, c.tl_key, COALESCE(c."OwnerId", '') AS owner, COALESCE(r.r, 0) AS r
FROM $days w
JOIN $contacts c ON c."CreatedDate" IS NULL OR CAST(c."CreatedDate" AS DATE) <= w.day
ASOF LEFT JOIN (SELECT cid, dn, max(r) AS r FROM $rungs GROUP BY cid, dn) r
  ON r.cid = c.tl_key AND $day_dn >= r.dn
"""


def on_days(days: str, *, batch: bool = False) -> exp.Expr:
    """`tl_t_on_days`: the rung each contact created by then stood on, on each day of the table `days` (k, day),
    read from the timeline built for a later day (`tl_t_rung`): the last row on or before that day, the lowest
    rung before the first. A rung on a day depends only on the history up to it, so this is what a sync on that
    day would write. `batch`: for the contacts of this batch (`tl_t_todo`) only; without it, every contact on
    every day was read again in each batch (20 times 36 million rows for a calibration of a million contacts).
    `tl_key` is the contact's key in the timeline's tables: its number in the batch, or its Id (`_base._of_batch`)."""
    contacts: exp.Expr = exp.Subquery(this=sql.q('SELECT *, "Id" AS tl_key FROM crm_contact'))
    if batch:
        contacts = exp.Subquery(this=_todo_contacts())
    return sql.create_temp(
        ON_DAYS,
        sql.q(
            _ON_DAYS,
            days=sql.table(days),
            contacts=contacts,
            rungs=sql.table(RUNGS),
            day_dn=_dn(sql.col("day", "w")),
        ),
    )
