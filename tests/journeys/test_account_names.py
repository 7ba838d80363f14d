"""A rep tells two contacts of one name apart by their account (issue 19): the digest's to-do and every other line
that names a contact, `explain`'s header and the report's tables name the account as the CRM holds it when they are
made. No placement reads an account, so renaming one neither wakes a quiet sync nor computes any contact again."""

from __future__ import annotations

import datetime as dt
import html
import shutil
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from connector import ids
from tests.conftest import Org
from tests.journeys.test_simulate_report import cli

LATER = 35  # days after the first sync


def two_marias(org: Org) -> dict[str, str]:
    """Two Maria Lopez: the one at Northfield Inc climbs from Friend to Familiar between the syncs; the one at
    Harbor Logistics gave feedback nobody thanked."""
    north = org.account("Northfield Inc")
    harbor = org.account("Harbor Logistics")
    at_north = org.contact("Maria", LastName="Lopez", AccountId=north)
    org.reply(at_north, 10)
    at_harbor = org.contact("Maria", LastName="Lopez", AccountId=harbor)
    org.reply(at_harbor, 12)
    org.sync()
    org.meeting(at_north, -30, "Discovery session")
    org.reply(at_north, -31)
    org.reply(at_north, -32)
    org.task(at_harbor, -20, "Feedback on the pilot")
    org.sync(days_later=LATER)
    return {"north": at_north, "harbor": at_harbor, "north_account": north, "harbor_account": harbor}


def later(org: Org) -> str:
    return (org.as_of + dt.timedelta(days=LATER)).isoformat()


def digest(org: Org, out: Path) -> str:
    proc = cli(org, "digest", "--out", str(out), "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr
    (page,) = out.glob("*.txt")
    return page.read_text()


def test_two_maria_lopez_at_different_accounts_are_told_apart_in_the_digest(org: Org, tmp_path: Path) -> None:
    m = two_marias(org)
    page = digest(org, tmp_path / "digest")
    today = page.split("To do today (1)\n", 1)[1].split("\n\n", 1)[0]
    assert f"1. Maria Lopez (Harbor Logistics, {m['harbor']}): Friend: Missing thank-you open" in today
    assert f"- Maria Lopez (Northfield Inc, {m['north']}) went up from Friend to Familiar" in page
    (htm,) = (tmp_path / "digest").glob("*.html")
    assert html.escape(f"Maria Lopez (Harbor Logistics, {m['harbor']})") in htm.read_text()


def test_explain_and_the_report_name_the_account_too(org: Org, tmp_path: Path) -> None:
    m = two_marias(org)
    proc = cli(org, "explain", m["north"], "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Maria Lopez (Northfield Inc, {m['north']}), as of {later(org)}, rules ")
    as_json = cli(org, "explain", m["north"], "--as-of", later(org), "--json")
    assert '"account": "Northfield Inc"' in as_json.stdout
    assert f'"account_id": "{m["north_account"]}"' in as_json.stdout

    out = tmp_path / "report.html"
    assert cli(org, "report", "--out", str(out), "--as-of", later(org)).returncode == 0
    page = out.read_text()
    # the oldest open flags (by owner, then one by one) and who moved name the account
    assert page.count(html.escape(f"Maria Lopez (Harbor Logistics, {m['harbor']})")) >= 2
    assert html.escape(f"Maria Lopez (Northfield Inc, {m['north']})") in page


def _quiet(org: Org, **kwargs: Any) -> bool:
    with capture_logs() as logs:
        org.sync(**kwargs)
    return any(e["event"] == "sync.unchanged" for e in logs)


def test_renaming_an_account_leaves_the_sync_quiet_and_the_digest_shows_the_new_name(org: Org, tmp_path: Path) -> None:
    m = two_marias(org)
    assert _quiet(org, days_later=LATER)  # nothing changed since the last run
    before = org.snapshot()
    org._exec(
        'UPDATE "Account" SET "Name" = \'Harbor Freight Group\', "SystemModstamp" = now() WHERE "Id" = ?',
        [m["harbor_account"]],
    )
    assert _quiet(org, days_later=LATER)  # the rename changes nothing a sync writes: the last result stands
    assert org.snapshot() == before
    assert f"Maria Lopez (Harbor Freight Group, {m['harbor']})" in digest(org, tmp_path / "digest")


def test_without_account_names_contacts_show_their_account_id_or_none(org: Org, tmp_path: Path) -> None:
    """A local CRM without the names (an import without Account.csv, a CRM made before names were kept): the
    account's Id stands in for its name, and a contact without an account says so; nothing fails."""
    m = two_marias(org)
    org._exec('DELETE FROM "Account"', [])
    org._exec('UPDATE "Contact" SET "AccountId" = NULL WHERE "Id" = ?', [m["north"]])
    page = digest(org, tmp_path / "digest")
    assert f"1. Maria Lopez (account {m['harbor_account']}, {m['harbor']}): Friend: Missing thank-you" in page
    assert f"- Maria Lopez (no account, {m['north']}) went up from Friend to Familiar" in page

    org._exec('DROP TABLE "Account"', [])  # as a CRM made by an earlier release: opened, it gets the table back
    assert f"(account {m['harbor_account']}, {m['harbor']})" in digest(org, tmp_path / "again")


def test_a_read_only_mirror_made_before_names_were_kept_still_gives_a_digest(org: Org, tmp_path: Path) -> None:
    """The digest opens the Salesforce mirror read-only: a mirror without the Account table (its last sync was by
    an earlier release) cannot be given one, and reads as names unknown."""
    m = two_marias(org)
    org._exec('DROP TABLE "Account"', [])
    shutil.copy(org.database, org.folder / "mirror.duckdb")
    config = org.folder / "sf.toml"
    config.write_text(
        '[crm]\nbackend = "salesforce"\n[salesforce]\nusername = "a@b.c"\nmirror = "mirror.duckdb"\n'
        f'[state]\npath = "state.duckdb"\n[rules]\npath = "{org.rules}"\n'
    )
    out = tmp_path / "digest"
    proc = cli(org, "--config", str(config), "digest", "--out", str(out), "--as-of", later(org))
    assert proc.returncode == 0, proc.stderr
    (page,) = out.glob("*.txt")
    assert f"Maria Lopez (account {m['harbor_account']}, {m['harbor']})" in page.read_text()


def test_an_import_names_accounts_from_account_csv_and_says_once_when_there_is_none(org: Org, tmp_path: Path) -> None:
    """The README's way in without Salesforce: a Data Export. With Account.csv the digest names each account;
    without it the import says so once (not once per contact) and the digest shows the account's Id."""
    north, harbor = ids.make(ids.ACCOUNT, 501), ids.make(ids.ACCOUNT, 502)
    marias = [ids.make(ids.CONTACT, 501), ids.make(ids.CONTACT, 502)]
    export = tmp_path / "export"
    export.mkdir()
    created = f"{org.day(100).isoformat()}T09:00:00.000Z"
    (export / "Contact.csv").write_text(
        '"Id","FirstName","LastName","AccountId","CreatedDate"\n'
        + "".join(f'"{c}","Maria","Lopez","{a}","{created}"\n' for c, a in zip(marias, (north, harbor), strict=True))
    )
    (export / "Task.csv").write_text(
        '"Id","WhoId","Subject","ActivityDate","Status","IsClosed"\n'
        + "".join(
            f'"{ids.make(ids.TASK, 501 + i)}","{c}","Feedback on the pilot","{org.day(20)}","Completed","1"\n'
            for i, c in enumerate(marias)
        )
    )
    (export / "Account.csv").write_text(
        f'"Id","Name","Type"\n"{north}","Northfield Inc","Customer"\n"{harbor}","Harbor Logistics","Customer"\n'
    )
    first = cli(org, "import", str(export))
    assert first.returncode == 0, first.stderr
    assert "Account: 2 imported" in first.stdout
    assert "Account.csv" not in first.stderr
    assert cli(org, "sync", "--as-of", org.as_of.isoformat()).returncode == 0
    out = tmp_path / "digest"
    assert cli(org, "digest", "--out", str(out), "--as-of", org.as_of.isoformat()).returncode == 0
    (page,) = out.glob("*.txt")
    assert f"Maria Lopez (Northfield Inc, {marias[0]})" in page.read_text()
    assert f"Maria Lopez (Harbor Logistics, {marias[1]})" in page.read_text()

    (export / "Account.csv").unlink()
    org.database.unlink()  # a first import, into a new local CRM
    second = cli(org, "import", str(export))
    assert second.returncode == 0, second.stderr
    said = [line for line in second.stderr.splitlines() if "Account.csv" in line and not line.startswith("{")]
    assert len(said) == 1  # and the log has its one event, import.no_account_names
    assert said[0].startswith(f"Account: no Account.csv in {export}; the digest, the report and `explain` show")
    assert cli(org, "sync", "--as-of", org.as_of.isoformat()).returncode == 0
    again = tmp_path / "again"
    assert cli(org, "digest", "--out", str(again), "--as-of", org.as_of.isoformat()).returncode == 0
    (page,) = again.glob("*.txt")
    assert f"Maria Lopez (account {north}, {marias[0]})" in page.read_text()
