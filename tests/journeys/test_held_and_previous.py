"""Who is slipping, and by when, on the Contact itself (issue 19): Trust_Held_Until__c carries the day a held
contact drops if nothing happens, Trust_Previous_Stage__c the rung before the current one, both read from the
contact's timeline and written only when they change."""

from __future__ import annotations

from pathlib import Path

import duckdb
from structlog.testing import capture_logs

from connector.crm.local.store import LocalCrm
from tests.conftest import Org


def test_a_held_contact_carries_its_drop_day_and_its_previous_rung_until_it_drops(org: Org) -> None:
    """Bea's discovery call (day -90) leaves the 120-day listening window on day 30: the 30-day grace period
    holds her on Familiar to day 60. She climbed to Familiar from Friend (her third conversation, day -10)."""
    bea = org.familiar_contact("Bea")
    org.sync()
    first = org.fields(bea)
    assert (first["stage"], first["held_until"], first["previous"]) == ("Familiar", None, "Friend")

    org.sync(days_later=35)
    held = org.fields(bea)
    assert (held["stage"], held["held_until"], held["previous"]) == ("Familiar", org.day(-60), "Friend")

    before = org.snapshot()
    assert org.sync(days_later=36).changed == 0  # the hold's day does not move while nothing happens
    assert org.snapshot() == before

    org.sync(days_later=61)
    dropped = org.fields(bea)
    assert (dropped["stage"], dropped["held_until"], dropped["previous"]) == ("Friend", None, "Familiar")
    assert dropped["since"] == org.day(-60)


def test_a_local_crm_from_before_the_two_fields_syncs_the_rest_and_says_so_once(org: Org) -> None:
    ada = org.familiar_contact("Ada")
    org.sync()  # creates the local CRM
    con = duckdb.connect(str(org.database))
    con.execute('ALTER TABLE "Contact" DROP COLUMN "Trust_Held_Until__c"')
    con.execute('ALTER TABLE "Contact" DROP COLUMN "Trust_Previous_Stage__c"')
    con.execute('UPDATE "Contact" SET "Trust_Stage__c" = NULL')
    con.close()
    with capture_logs() as logs:
        result = org.sync()
    assert result.changed == 1
    notices = [e for e in logs if e["event"] == "sync.optional_fields_absent"]
    assert [n["fields"] for n in notices] == [["Trust_Held_Until__c", "Trust_Previous_Stage__c"]]
    crm = LocalCrm.open(org.database)
    try:
        assert crm.con.execute('SELECT "Trust_Stage__c" FROM "Contact" WHERE "Id" = ?', [ada]).fetchone() == (
            "Familiar",
        )
    finally:
        crm.close()
    assert org.sync().changed == 0  # a field the CRM lacks is never planned, so never planned again


def test_a_crm_without_the_two_fields_is_not_computed_again_every_day_for_them(tmp_path: Path) -> None:
    """What a sync meant to write is compared with what the CRM shows to find contacts to compute again; a field
    the CRM lacks is never written, so it must not be compared, or every contact with a previous rung is computed
    on every run. A day later, the org without the two fields computes the same few contacts as the org with them."""
    computed = []
    for name, drop in (("with", False), ("without", True)):
        org = Org(tmp_path / name)
        org.folder.mkdir()
        LocalCrm.create(org.database).close()
        if drop:
            con = duckdb.connect(str(org.database))
            con.execute('ALTER TABLE "Contact" DROP COLUMN "Trust_Held_Until__c"')
            con.execute('ALTER TABLE "Contact" DROP COLUMN "Trust_Previous_Stage__c"')
            con.close()
        org.load_demo(contacts=300, seed=41)
        org.sync()
        with capture_logs() as logs:
            org.sync(days_later=1)
        [event] = [e for e in logs if e["event"] == "sync.timelines"]
        computed.append(int(event["computed"]))
    with_fields, without_fields = computed
    assert with_fields < 100
    assert without_fields == with_fields
