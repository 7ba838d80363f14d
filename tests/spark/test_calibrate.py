"""An admin on the Spark engine asks whether each rung is earned: `calibrate` gives the very table DuckDB gives, from
the CRM's data (the local CRM here, pushed to Spark as a sync pushes it) and from a warehouse copy of the org in
Fivetran's naming, deals included (`opportunity`, `opportunity_contact_role`, with a role on a won deal that the
pipeline marks deleted and that must credit nobody).

Fivetran's layout (https://fivetran.com/docs/connectors/applications/salesforce/connector-schema): one snake_case
table per object, snake_case columns, `_fivetran_synced` and `_fivetran_deleted` on every row.

One local Spark session serves every Spark test (tests/spark/conftest.py); it skips, saying why, without pyspark or
Java.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from connector.commands import demo_outcomes
from connector.config import WarehouseSection
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse.export import export
from connector.crm.warehouse.naming import FIVETRAN_DELETED
from connector.ruleset.compiler import load
from tests.conftest import DEFAULT_RULES
from tests.spark import needs
from tests.spark.conftest import AS_OF, cli

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = needs.SPARK

HORIZON = 30
SINCE = "2025-01-01"
# Calibrated months after the demo's data ends (as a newcomer who made the demo on a past day calibrates today):
# both engines and the warehouse copy must stop at the same month, where the data ends.
LATER = (AS_OF + dt.timedelta(days=150)).isoformat()


@pytest.fixture(scope="module")
def org(demo_crm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small demo org with its deals and bounces (demo_outcomes), in a folder of its own."""
    folder = tmp_path_factory.mktemp("calibrate")
    shutil.copy(demo_crm, folder / "crm.duckdb")
    crm = LocalCrm.open(folder / "crm.duckdb")
    try:
        demo_outcomes.add(crm, load(DEFAULT_RULES), seed=7, as_of=AS_OF)
    finally:
        crm.close()
    return folder


@pytest.fixture(scope="module")
def on_duckdb(org: Path) -> dict[str, Any]:
    config = _config(org, "duckdb")
    done = cli(config, "calibrate", "--json", "--as-of", LATER, "--since", SINCE, "--horizon", str(HORIZON))
    assert done.exit_code == 0, done.output
    return _without_cpu(json.loads(done.stdout))


def _without_cpu(data: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the calibration but the CPU it took."""
    data.pop("cpu_seconds", None)
    return data


def _config(org: Path, kind: str, warehouse: str = "") -> Path:
    config = org / f"{kind}{'-warehouse' if warehouse else ''}.toml"
    config.write_text(
        f'[local]\ndatabase = "{org / "crm.duckdb"}"\n[state]\npath = "{org / kind / "state.duckdb"}"\n'
        f'[rules]\npath = "{DEFAULT_RULES}"\n[engine]\nkind = "{kind}"\nmaster = "local[2]"\n' + warehouse
    )
    return config


def test_calibrate_on_spark_from_the_crm_gives_the_duckdb_table(
    spark: SparkSession, org: Path, on_duckdb: dict[str, Any]
) -> None:
    del spark  # running, for the command to join
    config = _config(org, "spark")
    done = cli(config, "calibrate", "--json", "--as-of", LATER, "--since", SINCE, "--horizon", str(HORIZON))
    assert done.exit_code == 0, done.output
    on_spark = _without_cpu(json.loads(done.stdout))
    names = [o["name"] for o in on_duckdb["outcomes"]]
    assert names == ["won_deal", "renewal", "gave_referral", "replied", "went_silent", "gone"]
    assert sum(r["hits"] for o in on_duckdb["outcomes"] for r in o["rungs"]) > 0
    _bounded_by_the_data(on_duckdb)
    assert on_spark == on_duckdb


def _fivetran_copy(crm_file: Path, folder: Path) -> WarehouseSection:
    """A Fivetran-named warehouse copy of the local CRM `crm_file` under `folder`."""
    crm = LocalCrm.open(crm_file)
    try:
        return export(crm, folder, naming_="fivetran")
    finally:
        crm.close()


def _warehouse(copy: WarehouseSection, *leave_out: str) -> str:
    """The `[warehouse]` section that reads `copy`, without the keys `leave_out`."""
    keys = copy.model_dump(exclude_none=True, exclude={"columns", *leave_out})
    return "[warehouse]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


def _bounded_by_the_data(cal: dict[str, Any]) -> None:
    """The months measured are those whose horizon ends by the demo's last day, before the evaluation date; the
    rest of the period is left out, and the header says so."""
    last = dt.date.fromisoformat(cal["last_day"])
    assert last < AS_OF  # the demo's data ends before the day it was made for, long before LATER
    window = dt.timedelta(days=HORIZON)
    days = [dt.date.fromisoformat(d) for d in cal["days"]]
    left = [dt.date.fromisoformat(d) for d in cal["left_out"]["days"]]
    assert days and all(d + window <= last for d in days)
    assert left[0] + window > last and left[-1] <= dt.date.fromisoformat(LATER)
    assert cal["left_out"]["why"].startswith(f"left out: {left[0].isoformat()} to {left[-1].isoformat()}")


def test_calibrate_on_spark_from_a_fivetran_copy_reads_its_deals_and_gives_the_duckdb_table(
    spark: SparkSession, org: Path, on_duckdb: dict[str, Any], tmp_path: Path
) -> None:
    del spark
    copy = _fivetran_copy(org / "crm.duckdb", tmp_path / "copy")
    assert copy.opportunity is not None and copy.opportunity_contact_role is not None
    roles = Path(copy.opportunity_contact_role) / "part-0.parquet"
    con = duckdb.connect()
    try:
        deleted = con.execute(f"SELECT count(*) FROM read_parquet(?) WHERE {FIVETRAN_DELETED}", [str(roles)]).fetchone()
    finally:
        con.close()
    assert deleted == (1,)  # the copy holds a role on a won deal that only the pipeline says is gone
    config = _config(org, "spark", _warehouse(copy))
    done = cli(config, "calibrate", "--json", "--as-of", LATER, "--since", SINCE, "--horizon", str(HORIZON))
    assert done.exit_code == 0, done.output
    assert _without_cpu(json.loads(done.stdout)) == on_duckdb


def test_a_copy_without_deals_leaves_the_deal_outcomes_out_and_says_so(
    spark: SparkSession, org: Path, tmp_path: Path
) -> None:
    del spark
    section = _warehouse(
        _fivetran_copy(org / "crm.duckdb", tmp_path / "copy"), "opportunity", "opportunity_contact_role"
    )
    done = cli(_config(org, "spark", section), "calibrate", "--as-of", LATER, "--since", SINCE)
    assert done.exit_code == 0, done.output
    # No deal to read: the months still end where the activities and bounces end.
    assert done.stdout.splitlines()[1].startswith("left out: ")
    assert "outcome 'won_deal' left out: the CRM data holds no Opportunity and OpportunityContactRole" in done.stdout
    assert "went_silent (bad, within 180 days)" in done.stdout


def test_deal_tables_without_a_row_leave_the_deal_outcomes_out_on_both_engines_and_the_copy(
    spark: SparkSession, demo_crm: Path, tmp_path: Path
) -> None:
    """An org that keeps no deals has Opportunity and OpportunityContactRole, empty. DuckDB, Spark from the CRM and
    Spark from the Fivetran copy (whose deal tables are there, without a row) leave won_deal and renewal out with
    the same line, rather than printing 0% on every rung, and agree on every other figure."""
    del spark
    shutil.copy(demo_crm, tmp_path / "crm.duckdb")
    crm = LocalCrm.open(tmp_path / "crm.duckdb")
    try:
        demo_outcomes.add(crm, load(DEFAULT_RULES), seed=7, as_of=AS_OF)
        crm.con.execute('DELETE FROM "OpportunityContactRole"')
        crm.con.execute('DELETE FROM "Opportunity"')
    finally:
        crm.close()
    copy = _fivetran_copy(tmp_path / "crm.duckdb", tmp_path / "copy")
    assert copy.opportunity is not None and copy.opportunity_contact_role is not None
    warehouse = _warehouse(copy)
    args = ("calibrate", "--json", "--as-of", LATER, "--since", SINCE, "--horizon", str(HORIZON))
    results = []
    for config in (
        _config(tmp_path, "duckdb"),
        _config(tmp_path, "spark"),
        _config(tmp_path, "spark", warehouse),
    ):
        done = cli(config, *args)
        assert done.exit_code == 0, done.output
        results.append(_without_cpu(json.loads(done.stdout)))
    on_duckdb = results[0]
    assert [o["name"] for o in on_duckdb["outcomes"]] == ["gave_referral", "replied", "went_silent", "gone"]
    left = [n for n in on_duckdb["notes"] if "left out: the CRM data holds no won Opportunity" in n]
    assert [n.split("'")[1] for n in left] == ["won_deal", "renewal"]
    assert results[1] == on_duckdb
    assert results[2] == on_duckdb
