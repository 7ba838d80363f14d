"""What `calibrate` tells the admin about what it could not measure, and what to do about it.

An outcome it cannot measure is left out with one line naming it and why, rather than printed as a table of 0%
rates: a table of zeros would read as "no rung is better than the one below", and `rules check` would warn about
rungs on data that says nothing. Each line ends with what to try: the file to import, the option to change, the
page of the docs that explains it.
"""

from __future__ import annotations

import datetime as dt

from connector.ruleset.compiled import CompiledOutcome

DOCS = "docs/calibration.md"
_DEALS_HINT = (
    "import Opportunity.csv and OpportunityContactRole.csv, or sync from Salesforce with these rules; "
    "a warehouse copy names them under [warehouse]"
)


def no_deal_tables(o: CompiledOutcome) -> str:
    """An outcome reading won deals, on CRM data without the deal tables."""
    return f"outcome '{o.name}' left out: the CRM data holds no Opportunity and OpportunityContactRole ({_DEALS_HINT})"


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def no_events(o: CompiledOutcome, as_of: dt.date) -> str:
    """An outcome whose source holds no row at all up to `as_of`: every rung would read the same 0% (or 100% for
    a `no_activity` one), which says nothing about the ladder."""
    where = f"up to {as_of.isoformat()}"
    if o.type == "won_opportunity":
        typed = f" of Type {_either(list(o.opportunity_types))}" if o.opportunity_types else ""
        return (
            f"outcome '{o.name}' left out: the CRM data holds no won Opportunity{typed} with a contact role {where} "
            f"({_DEALS_HINT})"
        )
    if o.gone is not None:
        signs = []
        if o.gone.email_bounced:
            signs.append("whose email bounced (Contact.IsEmailBounced or EmailBouncedDate)")
        if o.gone.inactive_field:
            signs.append(f"marked gone by Contact.{o.gone.inactive_field} = {o.gone.inactive_value}")
        return (
            f"outcome '{o.name}' left out: the CRM data holds no contact {' or '.join(signs)} {where}, so every "
            "rung would read 0% (Salesforce sets the bounce fields when bounce management is on)"
        )
    kinds = _either(list(o.kinds))
    effect = "every contact would count as silent" if o.type == "no_activity" else "every rung would read 0%"
    return (
        f"outcome '{o.name}' left out: the CRM data holds no activity of kind {kinds} {where}, so {effect} "
        "(`rules check --data` shows which kinds match activities)"
    )


def no_outcomes(*paths: str) -> str:
    """Rule files without outcomes: nothing to calibrate against."""
    which = " and ".join(dict.fromkeys(paths))
    declares = "declares" if len(set(paths)) == 1 else "declare"
    return (
        f"{which} {declares} no outcomes, so there is nothing to measure the rungs against: add an `outcomes:` "
        f"section after `flags:` (the default rules/ladder.yaml has six to copy; see {DOCS})"
    )
