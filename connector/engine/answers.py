"""Which answer answers which trigger, for an `unanswered` feature with `each_answer: answers_oldest`: a thank-you
answers its own input.

Answers are read one at a time in the order they happened (day, then Id), each answering one trigger still open
on or before its day:
1. of the kinds it names, when it names any (`named_by`: a thank-you "for the referral" answers a referral, never
   the feedback before it; one that names no kind may answer any);
2. among those, first the trigger it refers to: itself (an activity both input and thanks), the email it replies
   to, an email replying to the same one (the same thread), or an activity on the same related record (WhatId);
3. else the oldest, by day then Id.
An answer that finds nothing open answers nothing.

Reading them in order is what keeps a past day's reading the same as an evaluation on that day: an answer never
depends on a later one. The order is followed for the first `ROUNDS` answers on or after a contact's first trigger,
one set-based step per answer (a few rows a contact, every contact at once), in one statement so that an engine
plans it as one; answers after those answer every trigger still open on or before their day, as
`answers_all_before` does: a contact thanked that often is not one the flag is for.
"""

from __future__ import annotations

from sqlglot import exp

from connector import sql
from connector.engine.relations import CLASSIFIED, kind_col
from connector.ruleset.compiler import CompiledFeature

ROUNDS = 12  # answers per contact read in order, from its first trigger on


def _any(kinds: list[str], table: str | None = None) -> exp.Expr:
    return sql.any_of(sql.col(kind_col(k), table) for k in dict.fromkeys(kinds))


def _bool(e: exp.Expr) -> exp.Expr:
    return exp.Coalesce(this=e, expressions=[exp.false()])


def tables(prefix: str) -> tuple[str, str, str]:
    """The triggers, the answers, and the triggers with the day each was answered."""
    return f"{prefix}_trig", f"{prefix}_ans", prefix


def statements(f: CompiledFeature, prefix: str, where: exp.Expr) -> list[exp.Expr]:
    """Make `prefix`: one row per trigger of `f` among the classified activities that pass `where` (cid, aid, day,
    idx: its place among the contact's triggers from 0, and na: the day of the answer that answered it, NULL while
    none has)."""
    s = f.spec
    triggers, answers, out = tables(prefix)
    named = list((s.named_by or {}).items())
    trig_cols = [
        sql.col("cid"),
        sql.col("aid"),
        sql.col("day"),
        sql.alias(sql.q("row_number() OVER (PARTITION BY cid ORDER BY day, aid) - 1"), "idx"),
        sql.alias(sql.col("WhatId"), "what"),
        sql.alias(sql.col("RepliesTo"), "re"),
        *(sql.alias(_bool(_any([kind])), f"t{j}") for j, (kind, _) in enumerate(named)),
    ]
    trig = sql.select(*trig_cols, from_=CLASSIFIED.name).where(
        exp.and_(_any(s.unanswered or []), where.copy()), copy=False
    )
    first = sql.q(
        "SELECT cid, min(day) AS first FROM $t GROUP BY cid",
        t=sql.table(triggers),
    )
    ans_cols = [
        sql.col("cid", "a"),
        sql.col("aid", "a"),
        sql.col("day", "a"),
        sql.alias(sql.q("row_number() OVER (PARTITION BY a.cid ORDER BY a.day, a.aid) - 1"), "ord"),
        sql.alias(sql.col("WhatId", "a"), "what"),
        sql.alias(sql.col("RepliesTo", "a"), "re"),
        *(sql.alias(_bool(_any(kinds, "a")), f"n{j}") for j, (_, kinds) in enumerate(named)),
    ]
    source = sql.select(exp.Star(), from_=CLASSIFIED.name).where(
        exp.and_(_any(s.answered_by or []), where.copy()), copy=False
    )
    ans = (
        exp.select(*ans_cols)
        .from_(exp.Subquery(this=source, alias=exp.TableAlias(this=sql.ident("a"))))
        .join(
            exp.Subquery(this=first, alias=exp.TableAlias(this=sql.ident("f"))),
            on=sql.q("f.cid = a.cid AND a.day >= f.first"),
        )
    )
    return [
        sql.create_temp(triggers, trig),
        sql.create_temp(answers, ans),
        sql.create_temp(out, _matched(triggers, answers, len(named))),
    ]


def _matched(triggers: str, answers: str, named: int) -> exp.Expr:
    """The rounds, nested: round k gives each contact's answer k the best trigger open on or before its day."""
    carried = ["cid", "aid", "day", "idx", "what", "re", *(f"t{j}" for j in range(named))]
    state: exp.Expr = sql.q(
        "SELECT t.*, CAST(NULL AS DATE) AS na FROM $t t WHERE t.cid IN (SELECT cid FROM $a)",
        t=sql.table(triggers),
        a=sql.table(answers),
    )
    names_any = sql.any_of(sql.col(f"n{j}", "x") for j in range(named)) if named else exp.false()
    names_it = sql.any_of(exp.and_(sql.col(f"n{j}", "x"), sql.col(f"t{j}", "s")) for j in range(named))
    for k in range(ROUNDS):
        candidate = sql.q(
            "x.aid IS NOT NULL AND s.na IS NULL AND s.day <= x.day AND (NOT $names_any OR $names_it)",
            names_any=exp.paren(names_any.copy()),
            names_it=exp.paren(names_it.copy()) if named else exp.false(),
        )
        refers = sql.q("s.aid = x.aid OR s.aid = x.re OR s.re = x.re OR s.what = x.what")
        paired = sql.q(
            "SELECT s.*, x.day AS ad, $c AS c, $r AS r FROM ($state) s LEFT JOIN $a x ON x.cid = s.cid AND x.ord = $k",
            state=state,  # built for this step alone: nested as it is (sql.q)
            a=sql.table(answers),
            k=k,
            c=_bool(candidate),
            r=_bool(refers),
        )
        pick = sql.q(
            "CASE WHEN c AND row_number() OVER (PARTITION BY cid ORDER BY c DESC, r DESC, day, aid) = 1 "
            "THEN ad ELSE na END"
        )
        state = exp.select(*(sql.col(n) for n in carried), sql.alias(pick, "na")).from_(
            exp.Subquery(this=paired, alias=exp.TableAlias(this=sql.ident("p"))), copy=False
        )
    late = sql.q(
        "SELECT m.cid, m.aid, m.day, m.idx, COALESCE(m.na, min(x.day)) AS na FROM ($state) m "
        "LEFT JOIN $a x ON x.cid = m.cid AND x.ord >= $rounds AND x.day >= m.day "
        "GROUP BY m.cid, m.aid, m.day, m.idx, m.na",
        state=state,
        a=sql.table(answers),
        rounds=ROUNDS,
    )
    return sql.q(
        "SELECT t.cid, t.aid, t.day, t.idx, m.na FROM $t t LEFT JOIN ($late) m ON m.cid = t.cid AND m.aid = t.aid",
        t=sql.table(triggers),
        late=late,
    )
