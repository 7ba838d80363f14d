"""The two optional fields of issue 19 on Salesforce: written as a Date and a picklist value like the others, and
an org without them gets one notice, not an error ('Get Field and Other Metadata for an Object': a field the org
lacks is absent from describe's fields[]; 'Update Records Using sObject Collections': dates as YYYY-MM-DD)."""

from __future__ import annotations

import datetime as dt

from click.testing import CliRunner
from structlog.testing import capture_logs

from connector.crm.salesforce.commands import fields
from tests.salesforce.conftest import Run

OPTIONAL = ("Trust_Held_Until__c", "Trust_Previous_Stage__c")


def _held_contact(run: Run) -> str:
    """Familiar since her third conversation (day -40), with a discovery call on day -125 that leaves the
    120-day listening window on day -5: the 30-day grace period holds her on Familiar until day 25."""
    bea = run.org.contact("Bea", CreatedDate=run.org.now - dt.timedelta(days=300))
    run.org.event(bea, run.as_of - dt.timedelta(days=125), "Discovery call")
    for days in (60, 40):
        run.org.task(bea, run.as_of - dt.timedelta(days=days), "Re: the proposal", TaskSubtype="Email")
    return bea


def test_a_held_contact_gets_its_drop_day_and_previous_rung_written_once(run: Run) -> None:
    bea = _held_contact(run)
    result = run.sync()
    assert result.changed == 1
    stage, held_until, previous = run.org.fields_of(bea, "Trust_Stage__c", *OPTIONAL)
    assert stage == "Familiar"
    assert previous == "Friend"
    assert held_until is not None and run.as_of < held_until <= run.as_of + dt.timedelta(days=30)
    assert run.sync().changed == 0  # nothing new: nothing written, the drop day included


def test_an_org_without_the_optional_fields_gets_one_notice_and_everything_else(run: Run) -> None:
    bea = _held_contact(run)
    run.org.missing_fields.update(OPTIONAL)
    with capture_logs() as logs:
        result = run.sync()
    assert result.changed == 1
    assert run.org.fields_of(bea, "Trust_Stage__c") == ("Familiar",)
    notices = [e for e in logs if e["event"] == "sync.optional_fields_absent"]
    assert [n["fields"] for n in notices] == [list(OPTIONAL)]
    assert not [e for e in logs if e.get("log_level") == "error"]
    assert run.sync().changed == 0  # never planned for a field the org lacks

    checked = CliRunner().invoke(fields, ["check"], obj=run.config())
    assert checked.exit_code == 0, checked.output
    (notice,) = [line for line in checked.output.splitlines() if "notice:" in line]
    assert "Contact.Trust_Held_Until__c, Contact.Trust_Previous_Stage__c (optional)" in notice
    assert "Contact fields ok: Trust_Stage__c" in checked.output
    assert "Trust_Held_Until__c" not in checked.output.split("Contact fields ok:", 1)[1]


def test_the_pull_does_not_ask_for_a_field_the_org_lacks(run: Run) -> None:
    """The org answers a SOQL naming a field it lacks with INVALID_FIELD ('No such column'): the pull leaves it
    out, and the other optional field is still written."""
    run.org.missing_fields.add("Trust_Previous_Stage__c")
    bea = _held_contact(run)
    assert run.sync().changed == 1
    (held_until,) = run.org.fields_of(bea, "Trust_Held_Until__c")
    assert held_until is not None
