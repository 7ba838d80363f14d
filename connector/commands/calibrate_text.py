"""A calibration for people (a terminal table per outcome) and for machines (JSON), and side by side for two rule
sets (simulate)."""

from __future__ import annotations

from typing import Any

from connector.commands.calibration import (
    NOT_BETTER,
    NOT_CLEARLY,
    RECENT_MONTHS,
    UNMEASURED,
    Calibration,
    OutcomeTable,
    Rate,
    RungRow,
    Step,
    apart,
)

UNMEASURED_YET = (
    "no month of the period has its horizon behind it yet: a shorter --horizon measures later months (or an "
    "earlier --since, more months)"
)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def interval(rate: Rate) -> str:
    iv = rate.interval
    return "-" if iv is None else f"{100 * iv[0]:.1f}-{100 * iv[1]:.1f}%"


def lift(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _step(step: Step, direction: str) -> str:
    if step.standing == UNMEASURED:
        empty = step.rung if not step.row.all.n else step.below
        return f"{step.rung} against {step.below}: not measured ({empty} has no contact-month)"
    if step.standing == NOT_BETTER:
        how = "clearly" if apart(step.row.all, step.row_below.all) else "within the intervals: may be chance"
        return f"{step.rung} is not {direction} {step.below} ({how})"
    if step.standing == NOT_CLEARLY:
        return f"{step.rung} is {direction} {step.below}, not clearly (the intervals overlap: may be chance)"
    return f"{step.rung} is clearly {direction} {step.below}"


def verdict(table: OutcomeTable) -> str:
    """Per rung, whether it stands clearly above the one below it (its 95% interval apart from the one below's),
    above it but not clearly (the intervals overlap, so the difference may be chance), or not above it; below it,
    for a bad outcome. Earned: every rung clearly so."""
    direction = "above" if table.good else "below"
    steps = table.steps()
    if table.earned:
        return f"earned: each rung's rate is clearly {direction} the one below it (the 95% intervals apart)"
    standings = {s.standing for s in steps}
    if NOT_BETTER in standings:
        head = "not ordered"
    elif UNMEASURED in standings:
        head = "not all measured"
    else:
        head = "ordered, not all clearly"
    return f"{head}: " + "; ".join(_step(s, direction) for s in steps)


def horizon_hint(table: OutcomeTable) -> str | None:
    """When a rung has no contact-month: a shorter horizon measures later months, where the top rungs have more
    contacts (most relationships reach them late)."""
    empty = [r.rung for r in table.rows if not r.all.n]
    if not empty or table.first_day is None:
        return None
    shorter = max(1, table.horizon_days // 2)
    return (
        f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no contact-month within {table.horizon_days} days "
        f"of a measured month: a shorter --horizon (e.g. --horizon {shorter}) measures later months, where more "
        "contacts stand on the top rungs"
    )


def out_of_time(table: OutcomeTable, measured: int) -> str:
    """The out-of-time split's line: where the recent months begin, or that there are too few to split."""
    if table.recent_from is None:
        months = "1 month" if measured == 1 else f"{measured} months"
        return (
            f"out of time: too few months to split ({months} measured; a split needs at least {RECENT_MONTHS + 1}: "
            f"the last {RECENT_MONTHS} as recent and one or more before them); an earlier --since measures more"
        )
    recent = table.recent_from.isoformat()
    return f"out of time: tuning before {recent}, recent from {recent}"


def within(table: OutcomeTable) -> str:
    """The outcome's kind and the horizon measured, saying so when it is `--horizon`'s, not the rule file's."""
    kind = "good" if table.good else "bad"
    by = f" by --horizon; the rule file says {table.declared_horizon_days}" if table.horizon_set else ""
    return f"{table.name} ({kind}, within {table.horizon_days} days{by})"


def head_line(table: OutcomeTable) -> str:
    """The outcome as measured: its name, good or bad, the horizon measured and its words for that horizon."""
    return f"{within(table)}: {table.says}"


def months(cal: Calibration) -> str:
    """The months measured, as the header gives them."""
    if not cal.days:
        return "no month"
    count = "1 month" if len(cal.days) == 1 else f"{len(cal.days)} months"
    return f"the first of each month from {cal.days[0].isoformat()} to {cal.days[-1].isoformat()} ({count})"


def outcome_lines(table: OutcomeTable) -> list[str]:
    lines = [head_line(table)]
    if table.first_day is None:
        return [*lines, f"  {UNMEASURED_YET}"]
    lines.append(
        f"  days {table.first_day.isoformat()} to {table.last_day.isoformat() if table.last_day else '-'}; "
        f"{out_of_time(table, table.months)}"
    )
    width = max(10, *(len(r.rung) for r in table.rows)) + 2
    lines.append(
        f"  {'rung':<{width}}{'contact-months':>15}{'contacts':>10}{'rate':>8}{'95% interval':>15}{'lift':>8}"
        f"{'tuning':>9}{'recent':>9}"
    )
    for r in table.rows:
        lines.append(
            f"  {r.rung:<{width}}{r.all.n:>15,}{r.contacts:>10,}{pct(r.all.rate):>8}{interval(r.all):>15}"
            f"{lift(r.lift):>8}{pct(r.tuning.rate):>9}{pct(r.recent.rate):>9}"
        )
    lines.append(f"  {verdict(table)}")
    hint = horizon_hint(table)
    if hint:
        lines.append(f"  {hint}")
    if table.criteria:
        lines.append("  criteria (contacts on the rung below or higher): rate if met / if not met")
        for c in table.criteria:
            lines.append(
                f"    {c.rung:<{width - 2}}{pct(c.met.rate):>7} ({c.met.n:,}) / {pct(c.not_met.rate):>6} "
                f"({c.not_met.n:,})  {c.says}"
            )
    return lines


def render(cal: Calibration) -> str:
    head = f"Calibration as of {cal.as_of.isoformat()}: rungs on {months(cal)}; rules {cal.rules_version}"
    how = (
        "Rate: of the contacts on a rung on a month's first day, how many had the outcome within its horizon. "
        "Lift: the rate over the rung below's."
    )
    lines = [head, *([cal.left.why] if cal.left else []), *([cal.empty] if cal.empty else []), how]
    lines += [f"note: {n}" for n in cal.notes]
    for table in cal.outcomes:
        lines += ["", *outcome_lines(table)]
    lines += ["", f"Nothing was written. ({cal.seconds:.1f} CPU-s)"]
    return "\n".join(lines)


def _figures(row: RungRow | None) -> str:
    """One rule set's figures for a rung: contact-months, rate, 95% interval, lift."""
    if row is None:
        return f"{'-':>15}{'-':>8}{'-':>14}{'-':>7}"
    return f"{row.all.n:>15,}{pct(row.all.rate):>8}{interval(row.all):>14}{lift(row.lift):>7}"


def side_by_side(current: Calibration, new: Calibration) -> list[str]:
    """Each outcome's figures per rung (contact-months, rate, interval, lift) under both rule sets, and whether
    each set orders its rungs."""
    lines = [f"Calibration, current rules beside new rules; rungs on {months(current)}:"]
    if current.left:
        lines.append(f"  {current.left.why}")
    if current.empty:
        lines.append(f"  {current.empty}")
    new_by_name = {t.name: t for t in new.outcomes}
    for cur in current.outcomes:
        nxt = new_by_name.get(cur.name)
        lines.append(f"  {head_line(cur)}")
        names = [r.rung for r in cur.rows] + [
            r.rung for r in (nxt.rows if nxt else []) if r.rung not in [x.rung for x in cur.rows]
        ]
        width = max(10, *(len(n) for n in names)) + 2
        half = f"{'contact-months':>15}{'rate':>8}{'95% interval':>14}{'lift':>7}"
        lines.append(f"    {'':<{width}}{'current rules':^44}  | {'new rules':^44}".rstrip())
        lines.append(f"    {'rung':<{width}}{half}  | {half}")
        cur_rows = {r.rung: r for r in cur.rows}
        new_rows = {r.rung: r for r in nxt.rows} if nxt else {}
        for name in names:
            lines.append(f"    {name:<{width}}{_figures(cur_rows.get(name))}  | {_figures(new_rows.get(name))}")
        lines.append(f"    current: {verdict(cur)}")
        if nxt:
            lines.append(f"    new:     {verdict(nxt)}")
    for n in dict.fromkeys([*current.notes, *new.notes]):
        lines.append(f"  note: {n}")
    return lines


def _rate(rate: Rate) -> dict[str, Any]:
    iv = rate.interval
    return {
        "n": rate.n,
        "hits": rate.hits,
        "rate": rate.rate,
        "low": iv[0] if iv else None,
        "high": iv[1] if iv else None,
    }


def as_dict(cal: Calibration) -> dict[str, Any]:
    return {
        "as_of": cal.as_of.isoformat(),
        "since": cal.since.isoformat(),
        "rules_version": cal.rules_version,
        "days": [d.isoformat() for d in cal.days],
        "left_out": {"days": [d.isoformat() for d in cal.left.days], "why": cal.left.why} if cal.left else None,
        "last_day": cal.last_day.isoformat() if cal.last_day else None,
        "notes": cal.notes,
        "nothing_measured": cal.empty,
        "cpu_seconds": round(cal.seconds, 3),
        "outcomes": [
            {
                "name": t.name,
                "says": t.says,
                "good": t.good,
                "horizon_days": t.horizon_days,
                "declared_horizon_days": t.declared_horizon_days,
                "first_day": t.first_day.isoformat() if t.first_day else None,
                "last_day": t.last_day.isoformat() if t.last_day else None,
                "recent_from": t.recent_from.isoformat() if t.recent_from else None,
                "ordered": t.ordered,
                "earned": t.earned,
                "inversions": [list(p) for p in t.inversions()],
                "steps": [{"rung": st.rung, "below": st.below, "standing": st.standing} for st in t.steps()],
                "rungs": [
                    {
                        "rung": r.rung,
                        "contacts": r.contacts,
                        **_rate(r.all),
                        "lift": r.lift,
                        "tuning": _rate(r.tuning),
                        "recent": _rate(r.recent),
                    }
                    for r in t.rows
                ],
                "criteria": [
                    {"rung": c.rung, "says": c.says, "met": _rate(c.met), "not_met": _rate(c.not_met)}
                    for c in t.criteria
                ],
            }
            for t in cal.outcomes
        ],
    }
