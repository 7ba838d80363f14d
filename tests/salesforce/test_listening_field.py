"""Trust_Listening__c, the rep's word on whether a conversation was listening (issue 18), through the fake org at
the HTTP layer: pulled only where the Task and Event describes list it ("Get Field and Other Metadata for an
Object": a field the org lacks, or that field-level security hides from the sync user, is not in the describe, and
a query naming it is refused with INVALID_FIELD, "Status Codes and Error Responses"), and deciding over the words
of the default rules where it is set."""

from __future__ import annotations

import datetime as dt

from structlog.testing import capture_logs

from tests.salesforce.conftest import Run


def _three_short_calls(run: Run, *, marked: bool | None) -> str:
    """Three five-minute inbound calls logged as "Call": conversations, and by their words not listening (a
    generic subject needs twenty minutes). The last one carries the rep's answer, if any."""
    org = run.org
    ada = org.contact("Ada", stamp=org._naive_now() - dt.timedelta(days=2))
    for days in (40, 25, 10):
        fields = {"TaskSubtype": "Call", "CallType": "Inbound", "CallDurationInSeconds": 300}
        if days == 10 and marked is not None:
            fields["Trust_Listening__c"] = marked
        org.task(ada, run.as_of - dt.timedelta(days=days), "Call", **fields)
    return ada


def _task_queries(run: Run) -> list[str]:
    return [q for q in run.org.queries if " FROM Task" in q and "COUNT()" not in q]


def test_a_call_the_rep_marked_as_listening_lifts_the_contact_to_familiar(run: Run) -> None:
    ada = _three_short_calls(run, marked=True)
    run.sync()
    assert run.org.fields_of(ada, "Trust_Stage__c") == ("Familiar",)
    assert all("Trust_Listening__c" in q for q in _task_queries(run))
    describes = [p for _, p, _ in run.org.subrequests if p.endswith("/describe")]
    assert any(p.endswith("sobjects/Task/describe") for p in describes)
    assert any(p.endswith("sobjects/Event/describe") for p in describes)


def test_without_the_reps_answer_the_words_decide(run: Run) -> None:
    ada = _three_short_calls(run, marked=None)
    run.sync()
    assert run.org.fields_of(ada, "Trust_Stage__c") == ("Friend",)


def test_an_org_that_hides_the_field_is_pulled_without_it_and_read_by_the_words(run: Run) -> None:
    """Field-level security takes the field away from the sync user: the describe does not list it, the pull does
    not name it (a query that did would be refused), and the rules read it as unset."""
    org = run.org
    org.hidden = {"Task": {"Trust_Listening__c"}, "Event": {"Trust_Listening__c"}}
    ada = _three_short_calls(run, marked=None)
    with capture_logs() as logs:
        run.sync()
    assert org.fields_of(ada, "Trust_Stage__c") == ("Friend",)
    assert _task_queries(run)
    assert not [q for q in _task_queries(run) if "Trust_Listening__c" in q]
    hidden = [e for e in logs if e["event"] == "salesforce.fields_hidden"]
    assert {(e["object"], tuple(e["fields"])) for e in hidden} == {
        ("Task", ("Trust_Listening__c",)),
        ("Event", ("Trust_Listening__c",)),
    }


def test_a_field_deployed_later_is_pulled_once_the_describe_lists_it(run: Run) -> None:
    """The admin deploys the field after the first sync: the next day's describe lists it, the run after pulls
    Task and Event in full with it, and the rep's answer counts from then on."""
    org = run.org
    org.hidden = {"Task": {"Trust_Listening__c"}, "Event": {"Trust_Listening__c"}}
    ada = _three_short_calls(run, marked=None)
    run.sync()
    assert org.fields_of(ada, "Trust_Stage__c") == ("Friend",)

    org.hidden = {}
    call = org.task(
        ada,
        run.as_of - dt.timedelta(days=5),
        "Call",
        TaskSubtype="Call",
        CallType="Inbound",
        CallDurationInSeconds=300,
        Trust_Listening__c=True,
    )
    org.advance(days=1)
    run.sync()  # the describe is a day old: read again; the incremental pull still goes by the one kept
    org.advance(minutes=30)
    asked = len(org.queries)
    run.sync()
    assert any("Trust_Listening__c" in q for q in org.queries[asked:] if " FROM Task" in q)
    assert org.fields_of(ada, "Trust_Stage__c") == ("Familiar",), call
