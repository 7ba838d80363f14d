"""The words on the contact record, as SQL trees: next-step templates, flag labels and the reason.

Every piece of rule text (a rung's name and meaning, a criterion's `says`, a template's literal parts) enters as a
literal made by `sql.lit`; feature values enter as columns of the rule namespace.
"""

from __future__ import annotations

from sqlglot import exp

from connector import sql
from connector.engine import origin
from connector.engine.relations import (
    criterion_col,
    feature_col,
    feature_kind_col,
    feature_private_col,
    feature_subject_col,
    flag_col,
)
from connector.ruleset.compiler import CompiledCriterion, CompiledFlag, CompiledRung, RuleSet, Template
from connector.ruleset.expr import Type

NEXT_STEP_MAX = 255  # Text(255) on the Contact
REASON_MAX = 32_000  # a Long Text Area holds 32,768 characters by default; stay below it
SUBJECT_CITE_MAX = 60  # a cited subject is a reminder, not the whole message
# Reply and forward prefixes as mail clients in several languages write them, and "Email:" as Salesforce logs.
_PREFIXES = r"^\s*((re|fwd?|aw|wg|sv|tr|vs|antw|e-?mail)\s*(\[\d+\])?\s*:\s*)+"


def date_text(value: exp.Expr) -> exp.Expr:
    """'2 Oct 2026': always with the year, so a cited date reads the same on every day it is shown (a
    year-less date would change every flagged contact's next step on 1 January)."""
    return sql.q("strftime($d, '%-d %b %Y')", d=value)


def cut(text: exp.Expr, limit: int) -> exp.Expr:
    """At most `limit` characters, cut at a word boundary with an ellipsis, never mid-word (unless one word is
    longer than the limit)."""
    return sql.q(
        "CASE WHEN length($t) <= $n THEN $t "
        "WHEN regexp_matches(substr($t, $n, 1), '\\s') THEN rtrim(left($t, $m)) || '…' "
        "ELSE rtrim(regexp_replace(left($t, $m), '\\s+\\S*$', '')) || '…' END",
        t=text,
        n=limit,
        m=limit - 1,
    )


def cited_subject(name: str, rules: RuleSet) -> exp.Expr:
    """The cited activity's subject as a contact record may show it: reply prefixes gone, cut short; or only its
    kind when it is a private event or its subject holds a word that is not for everyone's eyes."""
    shown, hidden = _subject(name, rules)
    if hidden is None:
        return shown
    return sql.q(
        "CASE WHEN $hide THEN $kind ELSE $shown END", hide=hidden, kind=sql.col(feature_kind_col(name)), shown=shown
    )


def cited(name: str, rules: RuleSet) -> exp.Expr:
    """The cited activity named in full, as the record may show it: 'feedback of 3 Mar 2026 ("Survey results")',
    its kind's label, its day and its subject as `cited_subject` shows one; without the subject when it may not be
    shown or is empty ('concern they raised of 31 May 2026'), never the kind twice. For a flag whose reader must
    know which of several inputs is meant."""
    shown, hidden = _subject(name, rules)
    quoted = sql.q("CASE WHEN $s IS NULL OR $s = '' THEN '' ELSE concat(' (\"', $s, '\")') END", s=shown)
    if hidden is not None:
        quoted = sql.q("CASE WHEN $hide THEN '' ELSE $q END", hide=hidden, q=quoted)
    return concat(
        sql.q("COALESCE($k, '')", k=sql.col(feature_kind_col(name))),
        sql.lit(" of "),
        sql.q("COALESCE($d, '')", d=date_text(sql.col(feature_col(name)))),
        quoted,
    )


def _subject(name: str, rules: RuleSet) -> tuple[exp.Expr, exp.Expr | None]:
    """The subject cut for the record, and when it may not be shown at all (None: it always may)."""
    settings = rules.settings
    subject = sql.col(feature_subject_col(name))
    words = [
        origin.tag(sql.q("strpos(lower($s), $w) > 0", s=subject.copy(), w=w.lower()), ("ladder", "never_cite", i))
        for i, w in enumerate(settings.never_cite)
        if w
    ]
    hidden = [*words]
    if not settings.cite_private_events:
        hidden.append(sql.q("COALESCE($p, false)", p=sql.col(feature_private_col(name))))
    clean = sql.q("trim(regexp_replace($s, $prefixes, '', 'i'))", s=subject.copy(), prefixes=_PREFIXES)
    return cut(clean, SUBJECT_CITE_MAX), (sql.any_of(hidden) if hidden else None)


def concat(*parts: exp.Expr) -> exp.Expr:
    return sql.func("concat", *parts) if parts else sql.lit("")


def template(t: Template, rules: RuleSet) -> exp.Expr:
    parts: list[exp.Expr] = []
    offsets = t.offsets or (None,) * len(t.parts)
    for (literal, name, attr, fallback), at in zip(t.parts, offsets, strict=True):
        if literal:
            parts.append(sql.lit(literal))
        if name is None:
            continue
        f = rules.features[name]
        value: exp.Expr
        if attr == "subject":
            value = cited_subject(name, rules)
        elif attr == "cited":
            value = cited(name, rules)
        elif attr == "older_than_days":
            value = sql.lit(str(f.spec.older_than_days))
        elif attr == "kind":
            value = sql.col(feature_kind_col(name))
        elif f.type == Type.DATE:
            value = date_text(sql.col(feature_col(name)))
        elif f.type == Type.FLOAT:
            value = decimal_text(sql.col(feature_col(name)))
        else:
            value = exp.cast(sql.col(feature_col(name)), "VARCHAR")
        shown = sql.q(
            "COALESCE(NULLIF($v, ''), $fallback)", v=value, fallback=fallback if fallback is not None else "?"
        )
        parts.append(origin.tag(shown, t.loc, at))
    return origin.tag(concat(*parts), t.loc)


def decimal_text(value: exp.Expr) -> exp.Expr:
    """A decimal number with one digit after the point ('0.2', '-3.0', '12345678.9'), written by integer
    arithmetic: the engines' own round() to a digit and number-to-text disagree (DuckDB rounds 0.15 to 0.1 and Spark
    to 0.2; Spark writes 12345678.9 as 1.23456789E7), the product by ten and round() to a whole number do not. From
    10^16 the text is empty (NULL), so the placeholder's fallback shows."""
    tenths = sql.q("CASE WHEN abs($v) < 1e16 THEN CAST(round($v * 10) AS BIGINT) END", v=value)
    return sql.q(
        "CASE WHEN $n < 0 THEN '-' ELSE '' END || CAST(abs($n) // 10 AS VARCHAR) || '.' "
        "|| CAST(abs($n) % 10 AS VARCHAR)",
        n=tenths,
    )


def joined(items: list[exp.Expr]) -> exp.Expr:
    """'; '-joined non-NULL items ('' when there are none)."""
    return sql.func("concat_ws", sql.lit("; "), *items) if items else sql.lit("")


def missing(rungs: list[CompiledRung], k: int, flags: list[CompiledFlag] | None = None) -> exp.Expr:
    """What rungs 1..k still need, as '; '-joined `says` texts. With `flags` (what is slipping, not what a climb
    needs), a criterion on open flags says which are open ("a flag is open: Missing thank-you"): its own words,
    "no open flags", after "slipping" read as a double negative."""
    items = []
    for r in rungs[1 : k + 1]:
        for j, c in enumerate(r.criteria):
            says: exp.Expr = sql.lit(c.says)
            if flags and is_flag_criterion(c, flags):
                says = concat(sql.lit("a flag is open: "), open_labels(flags))
            items.append(
                origin.tag(
                    sql.q("CASE WHEN NOT $c THEN $says END", c=sql.col(criterion_col(r.index, j)), says=says),
                    ("rungs", r.index, "requires", j, "says"),
                )
            )
    return joined(items)


def is_flag_criterion(criterion: CompiledCriterion, flags: list[CompiledFlag]) -> bool:
    """Whether a rung's criterion reads the flags (open_flags, or a flag by its id): slipping on it means a flag
    opened, and closing that flag is what keeps the rung."""
    names = set(criterion.compiled.names)
    return "open_flags" in names or any(f.id in names for f in flags)


def open_labels(flags: list[CompiledFlag]) -> exp.Expr:
    """The open flags' labels, ', '-joined, in priority order."""
    items = [sql.q("CASE WHEN $f THEN $label END", f=sql.col(flag_col(f.id)), label=f.label) for f in flags]
    return sql.func("concat_ws", sql.lit(", "), *items)


def met(rung: CompiledRung) -> exp.Expr:
    return joined(
        [
            origin.tag(
                sql.q("CASE WHEN $c THEN $says END", c=sql.col(criterion_col(rung.index, j)), says=c.says),
                ("rungs", rung.index, "requires", j, "says"),
            )
            for j, c in enumerate(rung.criteria)
        ]
    )


def rung_name(rules: RuleSet, index: exp.Expr) -> exp.Expr:
    names = [origin.tag(sql.lit(r.name), ("rungs", r.index, "name")) for r in rules.rungs]
    return exp.Case(
        this=index, ifs=[exp.If(this=sql.lit(r.index), true=n) for r, n in zip(rules.rungs, names, strict=True)]
    )


def _by_rung(index: exp.Expr, cases: list[tuple[int, exp.Expr]]) -> exp.Expr:
    return exp.Case(this=index, ifs=[exp.If(this=sql.lit(i), true=text) for i, text in cases])


def reason(rules: RuleSet) -> exp.Expr:
    """Why the contact is where it is: the rung's meaning, what it meets, what the next rung still needs; or that
    it is held by the grace period, or decaying."""
    rungs = rules.rungs
    top = len(rungs) - 1
    settings = rules.settings
    final = sql.col("final")
    normal = []
    for r in rungs:
        parts = [origin.tag(sql.lit(f"{r.name}: {r.means or ''}"), ("rungs", r.index, "means"))]
        if r.index > 0:
            parts += [sql.lit(" Meets: "), met(r), sql.lit(".")]
        if r.index < top:
            nxt = rungs[r.index + 1]
            parts += [sql.lit(f" For {nxt.name} it still needs: "), missing(rungs, nxt.index), sql.lit(".")]
        normal.append((r.index, concat(*parts)))
    grace_end = grace_until(rules)
    grace = [
        (
            r.index,
            concat(
                sql.lit(f"Held at {r.name} during the demotion grace period, until "),
                grace_end,
                # One sentence: the record card shows a reason's first sentence and folds the rest away.
                sql.lit("; slipping: "),
                missing(rungs, r.index, rules.flags),
                sql.lit("."),
            ),
        )
        for r in rungs[1:]
    ]
    every = settings.decay_every_days
    decay = [
        (
            r.index,
            concat(
                sql.lit(f"{r.name}, decaying: it drops one rung every {every} days, the next on "),
                grace_end.copy(),
                sql.lit("; slipping: "),
                missing(rungs, r.index, rules.flags),
                sql.lit("."),
            ),
        )
        for r in rungs[1:]
    ]
    by_rung = sql.q(
        "CASE WHEN final > qualified AND in_grace THEN $grace WHEN final > qualified THEN $decay ELSE $normal END",
        grace=_by_rung(final, grace) if grace else exp.Null(),
        decay=_by_rung(final, decay) if decay else exp.Null(),
        normal=_by_rung(final, normal),
    )
    return concat(by_rung, open_flags(rules)) if rules.flags else by_rung


def open_flags(rules: RuleSet) -> exp.Expr:
    """' Open: Missing thank-you, they gave us input... (still open: the feedback of 28 May 2026 ("Survey
    answered"), for over 7 days).' for each open flag: the record says which flags are open and, for a flag that
    waits on an `unanswered` feature, which input is owed and why the flag opened after its day. Nothing here moves
    with the day (the cited input changes only when the history does), so a sync that finds nothing new writes
    nothing."""
    items = []
    for i, f in enumerate(rules.flags):
        parts: list[exp.Expr] = [
            origin.tag(sql.lit(f" Open: {f.label}" + (f", {f.says}" if f.says else "")), ("flags", i, "says"))
        ]
        for name in dict.fromkeys(f.compiled.names):
            feature = rules.features.get(name)
            if feature is None or feature.spec.type != "unanswered":
                continue
            owed = concat(
                sql.lit(" (still open: the "),
                cited(name, rules),
                sql.lit(f", for over {feature.spec.older_than_days} days)"),
            )
            parts.append(
                origin.tag(
                    sql.q("CASE WHEN $d IS NULL THEN '' ELSE $t END", d=sql.col(feature_col(name)), t=owed),
                    ("features", name),
                )
            )
        parts.append(sql.lit("."))
        items.append(sql.q("CASE WHEN $f THEN $t END", f=sql.col(flag_col(f.id)), t=concat(*parts)))
    return sql.q("COALESCE($v, '')", v=sql.func("concat_ws", sql.lit(""), *items))


def grace_until(rules: RuleSet) -> exp.Expr:  # noqa: ARG001 - one signature for every text builder
    """The day a held rung drops if nothing happens (from the timeline), as the record shows dates."""
    return date_text(sql.col("held_until"))


def keep_lead(rung: CompiledRung) -> str:
    """How held advice opens; the rest of the lead is the drop day and the rung's keep step."""
    return f"To stay {rung.name} past "


def keep_action(rules: RuleSet, held: CompiledRung) -> exp.Expr | None:
    """What keeps a held rung: the keep step of the highest rung whose criterion slips (a Forever contact slipping
    only on listening is told to listen, by Familiar's keep step; one slipping on Faithful's criteria as well, by
    Faithful's, which says to listen too);
    when only a criterion on flags slips, the first open flag's next step (close it). None where the rung has no
    keep step and nothing more specific applies: the advice is then what to restore."""
    whens: list[tuple[exp.Expr, exp.Expr]] = []
    flagged = False
    for r in reversed(rules.rungs[1 : held.index + 1]):
        slipping = []
        for j, c in enumerate(r.criteria):
            if is_flag_criterion(c, rules.flags):
                flagged = True
            else:
                slipping.append(sql.q("NOT $c", c=sql.col(criterion_col(r.index, j))))
        if slipping and r.keep_step is not None:
            whens.append((exp.or_(*slipping), template(r.keep_step, rules)))
    if flagged:
        whens += [(sql.col(flag_col(f.id)), template(f.next_step, rules)) for f in rules.flags]
    default = template(held.keep_step, rules) if held.keep_step is not None else None
    if not whens:
        return default
    return sql.case(whens, default) if default is not None else sql.case(whens)


def keep_advice(rules: RuleSet) -> exp.Expr:
    """For a contact the grace period holds: what to do and by when first ("To stay Faithful past 30 Jun 2026:
    book a listening conversation..."), then what is slipping, as room allows: the record holds 255 characters
    and a list of slipping criteria used to push the advice out of them. The advice is the keep step of what
    slips (keep_action); a rung with nothing to say says what to restore, never the climb advice of the rung
    below (which reads as advice to the contact's own rung)."""
    cases = []
    for r in rules.rungs[1:]:
        parts = [sql.lit(keep_lead(r)), grace_until(rules)]
        action = keep_action(rules, r)
        restore = [sql.lit(", restore: "), missing(rules.rungs, r.index, rules.flags), sql.lit(".")]
        if action is not None:
            with_action = concat(
                sql.lit(": "), action, sql.lit(". Slipping: "), missing(rules.rungs, r.index, rules.flags), sql.lit(".")
            )
            # Both engines alike: concat() of a NULL is '' to DuckDB and NULL to Spark, so test the action itself.
            parts.append(
                sql.q("CASE WHEN $a IS NULL THEN $r ELSE $w END", a=action.copy(), r=concat(*restore), w=with_action)
            )
        else:
            parts += restore
        cases.append((r.index, concat(*parts)))
    return _by_rung(sql.col("final"), cases) if cases else exp.Null()


def next_step(rules: RuleSet, flag_cols: list[tuple[exp.Expr, Template]]) -> exp.Expr:
    """The one next step: for a contact the grace period holds, what keeps its rung and by when (first, so the
    drop day is never lost behind an open flag's step; the flag stays on the record, and its step is the advice
    when the flag is what slips); else an open flag's; else how to climb."""
    rungs = rules.rungs
    top = len(rungs) - 1
    whens: list[tuple[exp.Expr, exp.Expr]] = [(sql.q("final > qualified AND in_grace"), keep_advice(rules))]
    whens += [(flag, template(t, rules)) for flag, t in flag_cols]
    whens.append((sql.q("final = $top", top=top), template(rules.top_next_step, rules)))
    for r in rungs[:-1]:
        nxt = rungs[r.index + 1]
        advice = (
            template(nxt.next_step, rules)
            if nxt.next_step
            else concat(sql.lit(f"To reach {nxt.name}: "), missing(rungs, nxt.index))
        )
        whens.append((sql.q("final = $i", i=r.index), advice))
    return sql.case(whens)


def flags_value(flag_cols: list[tuple[exp.Expr, str]]) -> exp.Expr:
    if not flag_cols:
        return exp.cast(exp.Null(), "VARCHAR")
    items = [sql.q("CASE WHEN $f THEN $label END", f=f, label=label) for f, label in flag_cols]
    return sql.q("NULLIF($v, '')", v=sql.func("concat_ws", sql.lit(";"), *items))
