"""A calibration for people (a terminal table per outcome) and for machines (JSON), and side by side for two rule
sets (simulate)."""

from __future__ import annotations

from typing import Any

from connector.commands.calibration import Calibration, OutcomeTable, Rate


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def interval(rate: Rate) -> str:
    iv = rate.interval
    return "-" if iv is None else f"{100 * iv[0]:.1f}-{100 * iv[1]:.1f}%"


def lift(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def verdict(table: OutcomeTable) -> str:
    """Whether the rungs are ordered for this outcome, and where not."""
    inv = table.inversions()
    direction = "above" if table.good else "below"
    if not inv:
        return f"ordered: each rung's rate is {direction} the one below it"
    rows = {r.rung: r.all for r in table.rows}

    def how(a: str, b: str) -> str:
        x, y = rows[a].interval, rows[b].interval
        apart = x is not None and y is not None and (x[1] < y[0] or y[1] < x[0])
        return "clearly" if apart else "within the intervals: may be chance"

    return "not ordered: " + "; ".join(f"{a} is not {direction} {b} ({how(a, b)})" for a, b in inv)


def outcome_lines(table: OutcomeTable) -> list[str]:
    kind = "good" if table.good else "bad"
    lines = [f"{table.name} ({kind}, within {table.horizon_days} days): {table.says}"]
    if table.first_day is None:
        return [*lines, "  no day of the period has its horizon behind it yet"]
    recent = table.recent_from.isoformat() if table.recent_from else "-"
    lines.append(
        f"  days {table.first_day.isoformat()} to {table.last_day.isoformat() if table.last_day else '-'}; "
        f"out of time: tuning before {recent}, recent from {recent}"
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
    if table.criteria:
        lines.append("  criteria (contacts on the rung below or higher): rate if met / if not met")
        for c in table.criteria:
            lines.append(
                f"    {c.rung:<{width - 2}}{pct(c.met.rate):>7} ({c.met.n:,}) / {pct(c.not_met.rate):>6} "
                f"({c.not_met.n:,})  {c.says}"
            )
    return lines


def render(cal: Calibration) -> str:
    head = (
        f"Calibration as of {cal.as_of.isoformat()}: rungs on the first of each month from "
        f"{cal.days[0].isoformat() if cal.days else '-'} ({len(cal.days)} months), rules {cal.rules_version}"
    )
    how = (
        "Rate: of the contacts on a rung on a month's first day, how many had the outcome within its horizon. "
        "Lift: the rate over the rung below's."
    )
    lines = [head, how]
    lines += [f"note: {n}" for n in cal.notes]
    for table in cal.outcomes:
        lines += ["", *outcome_lines(table)]
    lines += ["", f"Nothing was written. ({cal.seconds:.1f} CPU-s)"]
    return "\n".join(lines)


def side_by_side(current: Calibration, new: Calibration) -> list[str]:
    """Each outcome's rate per rung under both rule sets, and whether each set orders its rungs."""
    lines = [
        f"Calibration, current rules beside new rules (rungs on the first of each month, {len(current.days)} months):"
    ]
    new_by_name = {t.name: t for t in new.outcomes}
    for cur in current.outcomes:
        nxt = new_by_name.get(cur.name)
        lines.append(f"  {cur.name} ({'good' if cur.good else 'bad'}, within {cur.horizon_days} days)")
        names = [r.rung for r in cur.rows] + [
            r.rung for r in (nxt.rows if nxt else []) if r.rung not in [x.rung for x in cur.rows]
        ]
        cur_rows = {r.rung: r for r in cur.rows}
        new_rows = {r.rung: r for r in nxt.rows} if nxt else {}
        for name in names:
            a, b = cur_rows.get(name), new_rows.get(name)
            left = f"{pct(a.all.rate):>7} of {a.all.n:>7,}" if a else f"{'-':>18}"
            right = f"{pct(b.all.rate):>7} of {b.all.n:>7,}" if b else f"{'-':>18}"
            lines.append(f"    {name:<12}{left}   ->{right}")
        lines.append(f"    current: {verdict(cur)}")
        if nxt:
            lines.append(f"    new:     {verdict(nxt)}")
    for n in {*current.notes, *new.notes}:
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
        "notes": cal.notes,
        "cpu_seconds": round(cal.seconds, 3),
        "outcomes": [
            {
                "name": t.name,
                "says": t.says,
                "good": t.good,
                "horizon_days": t.horizon_days,
                "first_day": t.first_day.isoformat() if t.first_day else None,
                "last_day": t.last_day.isoformat() if t.last_day else None,
                "recent_from": t.recent_from.isoformat() if t.recent_from else None,
                "ordered": t.ordered,
                "inversions": [list(p) for p in t.inversions()],
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
