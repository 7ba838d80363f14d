"""Each contact's account by name on the Salesforce backend (issue 19): the Contact pull reads `Account.Name` as a
child-to-parent relationship field of its own query, so the names cost no API call, and the digest (which reads
the mirror, no call at all) tells two contacts of one name apart.

Wire formats, as the fake org serves them (tests/salesforce/fake_org.py):
- REST query: "Understanding Query Results" (SOQL and SOSL Reference,
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_relationships_query_results.htm)
  nests the parent, `"Account": {"attributes": {"type": "Account", "url": ...}, "Name": "Acme Corp (West)"}`;
  "null Values in Lookup Relationships and Outer Joins" (same reference,
  https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-relationships-lookup.md):
  a contact without an account is still returned, its `"Account"` null.
- Bulk API 2.0 query: "Create a Query Job" (Bulk API 2.0 Developer Guide,
  https://developer.salesforce.com/docs/platform/api-asynch/guide/query-create-job.html): child-to-parent relationship
  queries are supported; the result CSV has a column `Account.Name`, empty for a contact without an account.
- Field-level security: a field the user cannot see is absent from the describe ("Get Field and Other Metadata for an
  Object") and a query naming it is refused INVALID_FIELD.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from click.testing import Result

from connector.crm.local.store import LocalCrm
from tests.salesforce import fake_org
from tests.salesforce.conftest import Run
from tests.salesforce.test_cli_stops import _cli, _events

REST: dict[str, Any] = {"bulk_read_threshold": 10**9, "bulk_write_threshold": 10**9}


def _two_marias(run: Run) -> tuple[str, str, str]:
    """Two Maria Lopez, at Northfield Inc and Harbor Logistics, each owed a thank-you for feedback; and Ada, with
    no account, owed one too."""
    north = run.org.account("Northfield Inc")
    harbor = run.org.account("Harbor Logistics")
    north_maria = run.org.contact("Maria", "Lopez", AccountId=north)
    harbor_maria = run.org.contact("Maria", "Lopez", AccountId=harbor)
    ada = run.org.contact("Ada")
    for cid in (north_maria, harbor_maria, ada):
        run.org.task(cid, run.as_of - dt.timedelta(days=30), "Feedback on the pilot")
    return north_maria, harbor_maria, ada


def _digest(run: Run) -> str:
    out = run.folder / "digest"
    done = _cli(run, "digest", "--out", str(out), "--as-of", run.as_of.isoformat())
    assert done.exit_code == 0, done.stderr
    (page,) = out.glob("*.txt")
    return page.read_text()


def _today(page: str) -> str:
    return page.split("To do today (3)\n", 1)[1].split("\n\n", 1)[0]


def _recomputed(result: Result) -> int:
    """How many contacts a sync computed: none when it stopped before the engine (nothing changed since the last
    complete run), else as many as its narrowed scope held."""
    events = _events(result)
    if any(e["event"] == "sync.unchanged" for e in events):
        return 0
    (timelines,) = [e for e in events if e["event"] == "sync.timelines"]
    return int(timelines["computed"])


def _contact_soql(run: Run) -> list[str]:
    """Every Contact query for rows the org was sent, REST (in Composite) or Bulk (not the COUNT() of a full pull)."""
    return [q for q in run.org.queries if q.startswith("SELECT Id, FirstName") and " FROM Contact" in q]


def test_two_maria_lopez_at_different_accounts_are_told_apart_in_the_digest(run: Run) -> None:
    north_maria, harbor_maria, ada = _two_marias(run)
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
    assert all("Account.Name" in q for q in _contact_soql(run))
    calls = len(run.org.calls)

    today = _today(_digest(run))

    assert len(run.org.calls) == calls  # the digest reads the mirror
    assert f"Maria Lopez (Northfield Inc, {north_maria}): Fringe: Missing thank-you open" in today
    assert f"Maria Lopez (Harbor Logistics, {harbor_maria}): Fringe: Missing thank-you open" in today
    assert f"Ada Tester (no account, {ada}): Fringe: Missing thank-you open" in today  # "Account": null


def test_account_names_cost_no_api_call(run: Run) -> None:
    """The same first sync of the same org, by a user who can see Contact.AccountId (names pulled) and, from a
    fresh start, by one who cannot (no names): the same calls, in number and kind."""
    marias = _two_marias(run)
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
    with_names = list(run.org.calls)

    for name in ("mirror.duckdb", "state.duckdb"):  # a fresh start: the org as it was before the first sync
        (run.folder / name).unlink()
    trust = ", ".join(f'"{f}" = NULL' for f in fake_org.TRUST_FIELDS)
    run.org.con.execute(f'UPDATE "Contact" SET {trust} WHERE "Id" IN (?, ?, ?)', list(marias))
    run.org.calls.clear()
    run.org.missing_fields.add("AccountId")  # field-level security hides it from this user
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
    assert "Account" not in _contact_soql(run)[-1]
    assert sorted(run.org.calls) == sorted(with_names)


def test_names_come_through_a_bulk_query_as_its_account_name_column(run: Run) -> None:
    north_maria, harbor_maria, ada = _two_marias(run)
    for i in range(12):  # more contacts than the threshold: the Contact pull is a Bulk API 2.0 query job
        run.org.contact(f"Extra{i}", AccountId=run.org.account(f"Account {i}") if i % 2 else None)
    # A command-line run sleeps for real and so cannot move the fake org's clock: its job is done at once.
    run.org.bulk_seconds = 0.0
    result = _cli(run, "sync", "--as-of", run.as_of.isoformat(), bulk_read_threshold=10)
    assert result.exit_code == 0, result.stderr
    assert any(path.startswith("jobs/query") for _, path in run.org.calls)

    today = _today(_digest(run))

    assert f"Maria Lopez (Northfield Inc, {north_maria})" in today
    assert f"Maria Lopez (Harbor Logistics, {harbor_maria})" in today
    assert f"Ada Tester (no account, {ada})" in today  # an empty Account.Name cell


def test_a_user_who_cannot_see_the_contacts_account_syncs_and_names_contacts_without_it(run: Run) -> None:
    """Field-level security hides Contact.AccountId from the sync user: the pull leaves the account out (asking for
    it would be refused), the sync writes as ever, and the digest says 'no account' rather than failing."""
    north_maria, harbor_maria, _ = _two_marias(run)
    run.org.missing_fields.add("AccountId")
    result = _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST)
    assert result.exit_code == 0, result.stderr
    assert run.org.fields_of(north_maria, "Trust_Flags__c") == ("Missing thank-you",)  # written as ever
    assert all("Account" not in q for q in _contact_soql(run))

    today = _today(_digest(run))

    assert f"Maria Lopez (no account, {north_maria})" in today
    assert f"Maria Lopez (no account, {harbor_maria})" in today


def test_a_renamed_account_recomputes_nobody_and_shows_its_new_name_once_a_contact_of_it_is_pulled(run: Run) -> None:
    """An account rename does not touch its contacts (their SystemModstamp stays), so the incremental pull does not
    bring them: the sync computes nobody and the digest keeps the old name. The next time any contact of the
    account is pulled (someone edits Lee's title), the name is the new one for all of them, and still nobody is
    computed again: no placement reads an account's name."""
    north_maria, _, _ = _two_marias(run)
    north = str(run.org.fields_of(north_maria, "AccountId")[0])
    colleague = run.org.contact("Lee", AccountId=north)
    for _ in range(2):  # the second run re-reads what the first wrote (the watermark's overlap), then all is still
        assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
        run.org.advance(minutes=15)

    run.org.change("Account", north, Name="Northfield Group")
    quiet = _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST)
    assert quiet.exit_code == 0, quiet.stderr
    assert _recomputed(quiet) == 0
    assert "Maria Lopez (Northfield Inc, " in _digest(run)

    run.org.advance(minutes=15)
    run.org.change("Contact", colleague, Title="Head of Operations")  # someone edits Lee: Lee is pulled again
    again = _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST)
    assert again.exit_code == 0, again.stderr
    assert _recomputed(again) == 0  # nothing a placement reads changed: no contact computed again
    assert f"Maria Lopez (Northfield Group, {north_maria})" in _digest(run)


def test_a_contact_moved_to_another_account_shows_the_new_one(run: Run) -> None:
    north_maria, _, _ = _two_marias(run)
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
    run.org.advance(minutes=15)
    run.org.change("Contact", north_maria, AccountId=run.org.account("Summit Labs"))
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
    assert f"Maria Lopez (Summit Labs, {north_maria})" in _digest(run)
    mirror = LocalCrm.open(run.folder / "mirror.duckdb")
    try:
        names = dict(mirror.con.execute('SELECT "Name", "Id" FROM "Account"').fetchall())
    finally:
        mirror.close()
    assert {"Northfield Inc", "Harbor Logistics", "Summit Labs"} <= set(names)


def test_a_mirror_filled_without_names_gets_them_in_one_full_contact_pull(run: Run) -> None:
    """A mirror filled before names were pulled (here: by a user who could not see the contact's account, granted
    it since; the same holds for a mirror made by an earlier release): once the Contact describe is read again
    (it is remembered a day), the pull reads a field the mirror was not filled with, so it reads every contact
    once, and then goes back to incremental pulls."""
    north_maria, _, _ = _two_marias(run)
    run.org.missing_fields.add("AccountId")
    assert _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST).exit_code == 0
    assert f"Maria Lopez (no account, {north_maria})" in _digest(run)

    run.org.missing_fields.discard("AccountId")  # the admin grants the sync user the field
    run.org.advance(hours=25)
    granted = _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST)
    assert granted.exit_code == 0, granted.stderr
    (full,) = [e for e in _events(granted) if e["event"] == "salesforce.full_pull"]
    assert (full["object"], full["fields"]) == ("Contact", ["Account.Name", "AccountId"])
    assert f"Maria Lopez (Northfield Inc, {north_maria})" in _digest(run)

    run.org.advance(minutes=15)
    later = _cli(run, "sync", "--as-of", run.as_of.isoformat(), **REST)
    assert later.exit_code == 0, later.stderr
    assert not [e for e in _events(later) if e["event"] == "salesforce.full_pull"]
