"""A "contact gone" outcome reads the contact's bounce fields and the inactive field the rule file names, from the
Salesforce mirror: they are selected by the Contact pull only when the rules use them and the sync user can see
them (a field hidden by field-level security is absent from the describe, "Get Field and Other Metadata for an
Object", and naming it in a query is refused with INVALID_FIELD).

The fields are Contact's in the Object Reference for the Salesforce Platform ("Contact": IsEmailBounced, boolean;
EmailBouncedDate, dateTime; EmailBouncedReason, string), set by bounce management; Inactive__c stands for the
custom checkbox an org keeps for contacts who left.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from connector.commands import calibrate, calibration, sync
from connector.config import FieldsSection
from connector.crm.factory import open_data
from connector.crm.local import demo
from connector.ruleset import compiler
from tests.conftest import DEFAULT_RULES
from tests.salesforce.conftest import Run

HORIZON = 45


def _rules(folder: Path, *, gone: bool = True, since: bool = False) -> Path:
    """The default rules with the gone outcome reading Inactive__c too (and its day from Inactive_Date__c, with
    `since`); or without any contact_gone outcome."""
    text = DEFAULT_RULES.read_text()
    path = folder / "rules.yaml"
    if gone:
        field = "inactive_field: Inactive__c" + ("\n      inactive_since_field: Inactive_Date__c" if since else "")
        text = text.replace("      # inactive_field: Inactive__c", f"      {field}\n      #")
    else:
        text = text[: text.index("\n  gone:")] + "\n"
    path.write_text(text)
    return path


def _contact_soql(run: Run) -> str:
    """The last Contact pull's SOQL (not the counts, nor the check of our own writes)."""
    return next(q for q in reversed(run.org.queries) if " FROM Contact" in q and "FirstName" in q)


def _calibrate(run: Run, rules: Path) -> calibration.Calibration:
    crm = open_data(run.config())
    try:
        crm.prepare(FieldsSection())
        return calibrate.calibrate(crm.con, compiler.load(rules), run.as_of, horizon=HORIZON)
    finally:
        crm.close()


def test_the_gone_fields_are_pulled_only_when_an_outcome_reads_them(run: Run) -> None:
    demo.generate(run.org.crm, contacts=30, seed=5, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=3)
    run.org.add_contact_field("Inactive__c", "BOOLEAN")
    run.org.advance(minutes=1)
    sync.run(run.config(), as_of=run.as_of, rules_file=_rules(run.folder, gone=False))
    without = _contact_soql(run)
    assert "IsEmailBounced" not in without and "Inactive__c" not in without
    sync.run(run.config(), as_of=run.as_of, rules_file=_rules(run.folder))
    with_gone = _contact_soql(run)
    assert "IsEmailBounced" in with_gone and "EmailBouncedDate" in with_gone and "Inactive__c" in with_gone
    assert "FROM Contact WHERE" not in with_gone  # fields the mirror was not filled with: a full pull


def test_calibrate_counts_the_bounces_and_inactive_contacts_the_mirror_pulled(run: Run) -> None:
    """Two contacts bounced a month ago and one was marked inactive 20 days ago (Inactive_Date__c says so);
    calibrate on the mirror counts each of them on the month starts whose horizon holds its day, and the org
    sees no request."""
    demo.generate(run.org.crm, contacts=40, seed=5, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=3)
    run.org.add_contact_field("Inactive__c", "BOOLEAN")
    run.org.add_contact_field("Inactive_Date__c", "DATE")
    ids = [r[0] for r in run.org.con.execute('SELECT "Id" FROM "Contact" ORDER BY "Id" LIMIT 3').fetchall()]
    bounced = dt.datetime.combine(run.as_of - dt.timedelta(days=30), dt.time(9))
    left = run.as_of - dt.timedelta(days=20)
    run.org.con.execute(
        'UPDATE "Contact" SET "IsEmailBounced" = true, "EmailBouncedDate" = ?, "EmailBouncedReason" = ? '
        'WHERE "Id" IN (?, ?)',
        [bounced, "550 5.1.1 user unknown", ids[0], ids[1]],
    )
    run.org.con.execute(
        'UPDATE "Contact" SET "Inactive__c" = true, "Inactive_Date__c" = ? WHERE "Id" = ?', [left, ids[2]]
    )
    run.org.advance(minutes=1)
    rules = _rules(run.folder, since=True)
    sync.run(run.config(), as_of=run.as_of, rules_file=rules)
    before = len(run.org.calls)
    cal = _calibrate(run, rules)
    assert len(run.org.calls) == before
    assert not [n for n in cal.notes if "'gone'" in n], cal.notes  # (no deal in this org: those are left out)
    gone = next(t for t in cal.outcomes if t.name == "gone")
    created = dict(
        run.org.con.execute('SELECT "Id", CAST("CreatedDate" AS DATE) FROM "Contact" WHERE "Id" IN ?', [ids]).fetchall()
    )
    went = {ids[0]: bounced.date(), ids[1]: bounced.date(), ids[2]: left}
    window = [d for d in cal.days if d + dt.timedelta(days=HORIZON) < run.as_of]
    expected = sum(
        1 for d in window for cid, day in went.items() if created[cid] <= d < day <= d + dt.timedelta(days=HORIZON)
    )
    assert window and expected > 0
    assert sum(r.all.hits for r in gone.rows) == expected


def test_a_gone_field_hidden_from_the_sync_user_is_not_asked_for_and_calibrate_says_so(run: Run) -> None:
    demo.generate(run.org.crm, contacts=30, seed=5, as_of=run.as_of - dt.timedelta(days=1), activities_per_contact=3)
    run.org.add_contact_field("Inactive__c", "BOOLEAN")
    run.org.missing_fields |= {"Inactive__c", "IsEmailBounced"}
    first = run.org.con.execute('SELECT min("Id") FROM "Contact"').fetchone()
    assert first is not None
    bounced = dt.datetime.combine(run.as_of - dt.timedelta(days=30), dt.time(9))
    run.org.con.execute('UPDATE "Contact" SET "EmailBouncedDate" = ? WHERE "Id" = ?', [bounced, first[0]])
    run.org.advance(minutes=1)
    rules = _rules(run.folder)
    sync.run(run.config(), as_of=run.as_of, rules_file=rules)
    soql = _contact_soql(run)
    assert "Inactive__c" not in soql and "IsEmailBounced" not in soql and "EmailBouncedDate" in soql
    cal = _calibrate(run, rules)
    assert any("Contact.IsEmailBounced, Contact.Inactive__c" in n for n in cal.notes), cal.notes
    assert any(t.name == "gone" for t in cal.outcomes)  # EmailBouncedDate alone still says who bounced
