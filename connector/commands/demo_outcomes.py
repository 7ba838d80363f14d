"""The demo org's deals, drawn from the rung each contact stood on month by month under the rules in force
(connector.crm.local.demo._outcomes says how), so `calibrate` on the demo finds a relation that is known."""

from __future__ import annotations

import datetime as dt

from connector import sql
from connector.commands import rung_days, trend
from connector.config import ActivitiesSection, FieldsSection
from connector.crm.local import demo
from connector.crm.local.demo._outcomes import OUTCOME_MONTHS
from connector.crm.local.store import LocalCrm
from connector.ruleset.compiler import RuleSet


def add(
    crm: LocalCrm,
    rules: RuleSet,
    *,
    seed: int,
    as_of: dt.date,
    fields: FieldsSection | None = None,
    activities: ActivitiesSection | None = None,
) -> int:
    """Add the deals to a freshly generated demo org; returns how many Opportunities it holds."""
    crm.prepare(fields or FieldsSection(), activities=activities)
    days = [d for d in trend.month_starts(as_of, OUTCOME_MONTHS + 1) if d < as_of]
    rung_days.compute(crm.con, rules, as_of, days)
    try:
        return demo.add_outcomes(crm, rung_days.OUT, seed=seed, as_of=as_of)
    finally:
        for name in (rung_days.OUT, rung_days.DAYS):
            sql.run(crm.con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(name)))
