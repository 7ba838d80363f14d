"""A rule test's activity can state what Salesforce records beside the Task or Event (issue 8): the email's
direction, who else took part, a declined invitation, a private event, and when it was logged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from connector.commands import rule_test_data, rule_tests
from connector.config import FieldsSection
from connector.crm.local.store import LocalCrm
from tests.conftest import DEFAULT_RULES

AS_OF = dt.date(2026, 6, 15)

CASES = """
rules: {rules}
as_of: 2026-06-15
cases:
  - name: ada
    activities:
      - {{days_ago: 3, TaskSubtype: Email, Subject: "Question about pricing", incoming: true}}
      - {{days_ago: 2, TaskSubtype: Email, Subject: "Re: pricing", incoming: true, answers_ours: true}}
      - {{days_ago: 10, object: Event, Subject: Quarterly review, with: [bob], attendees: 2}}
      - {{days_ago: 10, TaskSubtype: Call, CallType: Inbound, Subject: Call, logged_days_ago: 1}}
    expect: {{rung: Friend}}
  - name: bob
    activities:
      - {{days_ago: 4, object: Event, Subject: Kickoff, declined: true, with: [ada]}}
      - {{days_ago: 5, object: Event, Subject: Doctor, private: true}}
      - {{days_ago: 6, object: Event, Subject: "Canceled: lunch"}}
    expect: {{rung: Friend}}
"""


def _rows(spec: rule_tests.RuleTestFile) -> tuple[list[str], list[list[str]], dict[tuple[str, str], dict[str, Any]]]:
    crm = LocalCrm.create(None)
    contacts, aids = rule_test_data.insert(crm.con, spec, AS_OF)
    crm.prepare(FieldsSection())
    cur = crm.con.execute("SELECT * FROM crm_activity")
    names = [d[0] for d in cur.description]
    rows = {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    crm.close()
    return contacts, aids, rows


def test_the_new_keys_become_emails_relations_and_dates() -> None:
    spec = rule_tests.RuleTestFile.model_validate(yaml.safe_load(CASES.format(rules=DEFAULT_RULES)))
    (ada, bob), (ada_acts, bob_acts), rows = _rows(spec)
    first, reply, review, call = ada_acts
    kickoff, doctor, lunch = bob_acts
    assert (rows[first, ada]["Incoming"], rows[first, ada]["AnswersOurs"]) == (True, False)
    assert rows[reply, ada]["AnswersOurs"] is True
    assert {cid for aid, cid in rows if aid == review} >= {ada, bob}
    assert rows[review, bob]["Attendees"] == 4  # ada, bob and two guests
    assert (rows[kickoff, bob]["Declined"], rows[kickoff, ada]["Declined"]) == (True, False)
    assert rows[doctor, bob]["IsPrivate"] is True
    assert rows[lunch, bob]["Cancelled"] is True
    assert (rows[call, ada]["day"], rows[call, ada]["LoggedDate"]) == (
        AS_OF - dt.timedelta(days=10),
        AS_OF - dt.timedelta(days=1),
    )


@pytest.mark.parametrize(
    ("activity", "message"),
    [
        ({"days_ago": 1, "object": "Event", "incoming": True}, "give it on a Task"),
        ({"days_ago": 1, "incoming": False, "answers_ours": True}, "needs incoming: true"),
        ({"days_ago": 1, "declined": True}, "give it on an Event"),
        ({"days_ago": 1, "with": ["nobody"]}, "not another case of this file"),
    ],
    ids=["incoming-event", "answers-outgoing", "declined-task", "unknown-with"],
)
def test_impossible_facts_are_refused(activity: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule_tests.RuleTestFile.model_validate(
            {"cases": [{"name": "a", "activities": [activity], "expect": {"rung": "Friend"}}]}
        )


def test_a_file_with_the_new_keys_runs(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text(CASES.format(rules=DEFAULT_RULES))
    report = rule_tests.run([path])
    assert [r.name for r in report.results] == ["ada", "bob"]
