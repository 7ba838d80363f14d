"""A newcomer runs the README's first command: a demo org is created, synced, and summarised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

AS_OF = "2026-11-01"
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", "--log-format", "json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_demo_creates_an_org_that_reaches_every_rung_and_both_flags(tmp_path: Path) -> None:
    # No config and no rules/ folder here: the built-in defaults and the packaged rule file are used.
    proc = cli("demo", "--contacts", "2000", "--as-of", AS_OF, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Demo org created" in proc.stdout
    for rung in ("Fringe", "Friend", "Familiar", "Faithful", "Forever"):
        assert f"  {rung}" in proc.stdout

    con = duckdb.connect(str(tmp_path / "trust-ladder-data" / "crm.duckdb"), read_only=True)
    stages = dict(con.execute('SELECT "Trust_Stage__c", count(*) FROM "Contact" GROUP BY 1').fetchall())
    assert set(stages) == {"Fringe", "Friend", "Familiar", "Faithful", "Forever"}
    assert all(n >= 20 for n in stages.values()), stages  # every rung is really populated, not a fluke
    stages_of = dict(con.execute('SELECT "Id", "Trust_Stage__c" FROM "Contact"').fetchall())
    flags = dict(
        con.execute(
            """SELECT f, count(*) FROM (SELECT unnest(string_split("Trust_Flags__c", ';')) AS f FROM "Contact")
           GROUP BY 1"""
        ).fetchall()
    )
    assert flags.get("Missing listening", 0) >= 20
    assert flags.get("Missing thank-you", 0) >= 20
    # Gratitude triggers that were thanked raise nothing: some contacts have a trigger and no flag.
    thanked = con.execute(
        """SELECT count(DISTINCT c."Id") FROM "Contact" c JOIN "Task" t ON t."WhoId" = c."Id"
           WHERE t."Subject" ILIKE '%feedback%' AND c."Trust_Flags__c" IS NULL"""
    ).fetchone()
    assert thanked is not None
    assert thanked[0] >= 20
    con.close()

    # The output names a contact on each rung, and the one `explain` is suggested for is real.
    listed = proc.stdout.split("A contact on each rung:")[1].split("\n\n")[0]
    shown = [line.split() for line in listed.splitlines() if line.strip()]
    assert [row[1] for row in shown] == ["Fringe", "Friend", "Familiar", "Faithful", "Forever"]
    for row in shown:
        assert stages_of[row[0]] == row[1]
    first = shown[0][0]
    assert f"trust-ladder explain {first}`" in proc.stdout
    explained = cli("explain", first, "--as-of", AS_OF, cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr

    again = cli("sync", "--as-of", AS_OF, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] == 0

    # Every kind of the default rules has activities in the demo: concerns, what was acted on, hard moments
    # worked through, as well as emails, calls and meetings; so no kind is unmatched. The check's only warnings are
    # calibration's: the demo's Familiar rung is, on purpose, no better than Friend at winning deals (see
    # connector/crm/local/demo/_outcomes.py), and `rules check` says it is not clearly above Friend from the demo's
    # own history.
    check = cli("rules", "check", "--as-of", AS_OF, str(ROOT / "rules" / "ladder.yaml"), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "matches none" not in check.stdout
    warnings = [line for line in check.stdout.splitlines() if ": warning: " in line]
    assert warnings, check.stdout
    assert all("in the local CRM's history" in w for w in warnings), warnings
    assert any("rung 'Familiar' is" in w and "'Friend'" in w and "'won_deal'" in w for w in warnings), warnings


def test_demo_refuses_to_overwrite_an_imported_crm(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "Contact.csv").write_text('"Id","FirstName","LastName"\n"0038d0000000001AAA","Ada","L"\n')
    assert cli("import", str(export), cwd=tmp_path).returncode == 0
    proc = cli("demo", "--contacts", "10", cwd=tmp_path)
    assert proc.returncode == 3
    assert "--replace" in proc.stderr


def test_demo_run_again_says_it_replaced_the_demo_org_and_cleared_its_history(tmp_path: Path) -> None:
    first = cli("demo", "--contacts", "10", "--as-of", AS_OF, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "was replaced" not in first.stdout
    again = cli("demo", "--contacts", "12", "--as-of", AS_OF, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    data = tmp_path / "trust-ladder-data"
    assert (
        f"The local CRM in {data / 'crm.duckdb'} was replaced by a new demo org, and its run history "
        f"({data / 'state.duckdb'}) cleared." in again.stdout
    )
    assert "12 contacts" in again.stdout


def test_demo_can_write_itself_out_as_a_warehouse_copy_with_a_config_that_syncs_it_on_spark(tmp_path: Path) -> None:
    """The README's way to try the Spark engine without Salesforce: the copy and its config, checked without Spark
    (tests/spark/ syncs from such a copy)."""
    from connector import config  # noqa: PLC0415

    proc = cli("demo", "--contacts", "50", "--warehouse", "lake", "--as-of", AS_OF, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"`trust-ladder --config {tmp_path / 'lake' / 'trust-ladder.toml'} sync`" in proc.stdout
    cfg = config.load(tmp_path / "lake" / "trust-ladder.toml")
    assert cfg.engine.kind == "spark"
    assert cfg.warehouse is not None
    assert (cfg.warehouse.naming, cfg.warehouse.format) == ("fivetran", "parquet")
    assert cfg.resolve(cfg.local.database) == tmp_path / "trust-ladder-data" / "crm.duckdb"
    contacts = duckdb.connect().execute(
        "SELECT count(*) FILTER (WHERE NOT _fivetran_deleted AND _fivetran_active) FROM read_parquet(?)",
        [f"{cfg.warehouse.contact}/*.parquet"],
    )
    assert contacts.fetchone() == (50,)

    # Again into the same folder: refused before anything is replaced (the CRM keeps its 50 contacts).
    crm = tmp_path / "trust-ladder-data" / "crm.duckdb"
    before = crm.stat().st_mtime_ns
    again = cli("demo", "--contacts", "20", "--warehouse", "lake", "--as-of", AS_OF, cwd=tmp_path)
    assert again.returncode == 3, again.stderr
    assert "already holds trust-ladder.toml, contact" in again.stderr
    assert crm.stat().st_mtime_ns == before


def test_demo_refuses_a_warehouse_folder_that_would_overwrite_a_config_or_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "trust-ladder.toml").write_text('[rules]\nmode = "audit"\n')  # the user's own config, here
    for folder, says in ((".", "already holds trust-ladder.toml"), ("/proc/lake", "cannot write there")):
        proc = cli("demo", "--contacts", "10", "--warehouse", folder, "--as-of", AS_OF, cwd=tmp_path)
        assert proc.returncode == 3, (folder, proc.stderr)
        assert says in proc.stderr
    assert (tmp_path / "trust-ladder.toml").read_text() == '[rules]\nmode = "audit"\n'
    assert not (tmp_path / "trust-ladder-data").exists()  # no local CRM was made
