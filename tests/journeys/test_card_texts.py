"""The record card's jest tests read the texts the engine writes (issue 19): each fixture in
salesforce/force-app/main/default/lwc/trustLadder/__tests__/data is a contact this journey syncs, field by field,
so a change of wording in the engine fails here until the card's tests are run against the new words."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from tests.conftest import ROOT, Org

FIXTURES = ROOT / "salesforce/force-app/main/default/lwc/trustLadder/__tests__/data"
SHOWN = {
    "stage": "Trust_Stage__c",
    "since": "Trust_Stage_Since__c",
    "flags": "Trust_Flags__c",
    "next_step": "Trust_Next_Step__c",
    "reason": "Trust_Reason__c",
    "version": "Trust_Rules_Version__c",
    "held_until": "Trust_Held_Until__c",
    "previous": "Trust_Previous_Stage__c",
}


def _as_ui_api(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields as User Interface API's record representation carries them (dates as YYYY-MM-DD)."""
    out = {}
    for key, api in SHOWN.items():
        value = fields[key]
        out[api] = value.isoformat() if isinstance(value, dt.date) else value
    return out


def _fixture(name: str) -> dict[str, Any]:
    record = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return {api: record["fields"][api]["value"] for api in SHOWN.values() if api in record["fields"]}


def _version_free(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "Trust_Rules_Version__c"}  # a hash of the rule file


def test_the_held_and_moved_down_fixtures_are_what_a_sync_writes(org: Org) -> None:
    """Bea (tests.conftest.Org.familiar_contact): held on Familiar from day 30 to day 60, then down to Friend."""
    bea = org.familiar_contact("Bea")
    org.sync()
    org.sync(days_later=35)
    assert _version_free(_as_ui_api(org.fields(bea))) == _version_free(_fixture("contactHeld.json"))
    org.sync(days_later=61)
    assert _version_free(_as_ui_api(org.fields(bea))) == _version_free(_fixture("contactMovedDown.json"))


def test_the_flagged_fixture_is_what_a_sync_writes(org: Org) -> None:
    """Cy replied, gave feedback nobody thanked, and has had three emails since without a listening
    conversation: both flags, the thank-you first."""
    cy = org.contact("Cy", known_for_days=200)
    org.reply(cy, 40)
    org.task(cy, 30, "Feedback on the pilot")
    for days in (20, 12, 5):
        org.email_out(cy, days)
    org.sync()
    assert _version_free(_as_ui_api(org.fields(cy))) == _version_free(_fixture("contactFlagged.json"))


def _logged_by_the_card() -> dict[str, tuple[str, str]]:
    """flag -> (Subject, TaskSubtype) of the Task the card's button creates, read from the component itself."""
    js = (ROOT / "salesforce/force-app/main/default/lwc/trustLadder/trustLadder.js").read_text(encoding="utf-8")
    found = re.findall(
        r"'([^']+)': \{\s*button: '[^']+',\s*subject: '([^']+)',\s*subtype: '([^']+)'", js, flags=re.MULTILINE
    )
    return {flag: (subject, subtype) for flag, subject, subtype in found}


def test_the_tasks_the_card_logs_clear_the_flags_they_answer_at_the_next_sync(org: Org) -> None:
    """Cy's two flags; the rep presses both buttons (a completed Task each, dated today); the next sync under the
    default rules counts one as a thank-you and the other as a listening conversation."""
    logged = _logged_by_the_card()
    assert sorted(logged) == ["Missing listening", "Missing thank-you"]
    cy = org.contact("Cy", known_for_days=200)
    org.reply(cy, 40)
    org.task(cy, 30, "Feedback on the pilot")
    for days in (20, 12, 5):
        org.email_out(cy, days)
    org.sync()
    assert org.fields(cy)["flags"] == "Missing thank-you;Missing listening"
    for subject, subtype in logged.values():
        org.task(cy, 0, subject, subtype=subtype)
    org.sync()
    after = org.fields(cy)
    assert after["flags"] is None
    assert not after["next_step"].startswith(("Send Cy a thank-you", "Book a listening conversation:"))
