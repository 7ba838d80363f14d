"""The report's calibration section: per outcome, each rung's rate with its interval and lift, and for a simulation
the current and the new rules side by side."""

from __future__ import annotations

from connector.commands.calibrate_text import UNMEASURED_YET, horizon_hint, interval, lift, months, pct, verdict, within
from connector.commands.calibration import Calibration, OutcomeTable
from connector.commands.report_sections import e, table

_HOW = (
    "For the first day of each month, the rung each contact stood on (read from its history), and whether the "
    "outcome followed within its horizon. Rate: the share of those contact-months that saw it, with a 95% interval "
    "(Wilson). Lift: the rate over the rung below's. Each rung is clearly above the rung below (its rate "
    "higher and the two intervals apart: earned), above it but not clearly (the intervals overlap: the difference "
    "may be chance), or not above it; below, for a bad outcome. Recent: the last six months measured, "
    "apart from the earlier (tuning) ones, so a threshold tuned on the past is checked on months it was not tuned on."
)


def _one(t: OutcomeTable) -> str:
    head = f"<h3>{e(within(t))}</h3>"
    if t.first_day is None:
        return head + f'<p class="note warn">{e(UNMEASURED_YET)}.</p>'
    rows: list[list[object]] = [
        [
            r.rung,
            f"{r.all.n:,}",
            f"{r.contacts:,}",
            pct(r.all.rate),
            interval(r.all),
            lift(r.lift),
            pct(r.tuning.rate),
            pct(r.recent.rate),
        ]
        for r in t.rows
    ]
    why = horizon_hint(t)
    hint = f'<p class="note warn">{e(why)}.</p>' if why else ""
    body = table(["rung", "contact-months", "contacts", "rate", "95% interval", "lift", "tuning", "recent"], rows)
    crit = table(
        ["rung", "criterion", "rate if met", "rate if not met"],
        [
            [c.rung, c.says, f"{pct(c.met.rate)} of {c.met.n:,}", f"{pct(c.not_met.rate)} of {c.not_met.n:,}"]
            for c in t.criteria
        ],
    )
    return (
        f'{head}<p class="note">{e(t.says)}. {e(verdict(t))}.</p>{hint}{body}'
        f"<details><summary>Which criteria carry the signal</summary>{crit}</details>"
    )


_TITLE = "<h2>Is each rung earned? (calibration)</h2>"


def skipped(why: str | None) -> str:
    """In place of the section when nothing can be calibrated (a rule file without outcomes): one line saying
    why and what to do, so the admin does not look for a section that silently is not there."""
    if why is None:
        return ""
    return f'<section>{_TITLE}<p class="note">Left out: {e(why)}.</p></section>'


def section(cal: Calibration | None, new: Calibration | None = None) -> str:
    """The section's HTML: one calibration, or the current rules' beside the new ones'."""
    if cal is None:
        return ""
    notes = f'<p class="note">Rungs on {e(months(cal))}.</p>' + "".join(
        f'<p class="note warn">{e(n)}</p>'
        for n in dict.fromkeys(
            [*([cal.left.why] if cal.left else []), *([cal.empty] if cal.empty else []), *cal.notes]
            + (new.notes if new else [])
        )
    )
    if new is None:
        parts = "".join(_one(t) for t in cal.outcomes)
    else:
        by_name = {t.name: t for t in new.outcomes}
        parts = ""
        for t in cal.outcomes:
            other = by_name.get(t.name)
            parts += (
                '<div class="side"><div><h4>current rules</h4>'
                + _one(t)
                + "</div><div><h4>new rules</h4>"
                + (_one(other) if other else "<p>(not an outcome of the new rules)</p>")
                + "</div></div>"
            )
    return f'<section>{_TITLE}<p class="note">{e(_HOW)}</p>{notes}{parts}</section>'
