"""Fixtures: a local CRM in a temp folder, and a small language for writing contact histories in tests."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from connector import ids
from connector.commands import sync
from connector.config import Config, FieldsSection, LocalSection, RulesSection, StateSection
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RULES = ROOT / "rules" / "ladder.yaml"
EVERY_FEATURE = ROOT / "tests" / "spark" / "every_feature.yaml"  # every feature type and option, for both engines
# The default ladder and the rule file with every feature type: what a test of every engine statement runs on.
BOTH_RULE_FILES = pytest.mark.parametrize(
    "rules_file", [DEFAULT_RULES, EVERY_FEATURE], ids=["default", "every_feature"]
)
AS_OF = dt.date(2026, 6, 15)
TRUST_FIELDS = list(FieldsSection().model_dump().values())


@dataclass
class Org:
    """A local CRM being written by a test: contacts, and their activities `days_ago` before an as-of date.

    A test writes its history a row at a time. Opening the file costs more than a row (about 23 ms to read the
    CRM's schema, 10 ms to close), so consecutive rows share one connection, held until anything else may read the
    file: `folder`, `database` and `config` close it first, and every command a test runs finds its path there."""

    where: Path
    as_of: dt.date = AS_OF
    rules: Path = DEFAULT_RULES
    _seq: Iterator[int] = field(default_factory=itertools.count)
    _held: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        self.release()
        return self.where

    @property
    def database(self) -> Path:
        return self.folder / "crm.duckdb"

    @property
    def config(self) -> Config:
        return Config(
            local=LocalSection(database=self.database),
            state=StateSection(path=self.folder / "state.duckdb"),
            rules=RulesSection(path=self.rules),
        )

    def release(self) -> None:
        """Close the connection the last rows were written through (the file is then complete on disk)."""
        if self._held is not None:
            held, self._held = self._held, None
            held.close()

    def _exec(self, sql: str, params: list[Any]) -> None:
        if self._held is None:
            path = self.where / "crm.duckdb"
            if not path.exists():
                LocalCrm.create(path).close()
            # A plain connection: the file is at the current schema (made above or by the fixture), and opening it
            # as the CRM backend costs half as much again.
            self._held = duckdb.connect(str(path))
        self._held.execute(sql, params)

    def day(self, days_ago: int) -> dt.date:
        return self.as_of - dt.timedelta(days=days_ago)

    def contact(self, first_name: str = "Ada", *, known_for_days: int = 100, **extra: Any) -> str:
        cid = ids.make(ids.CONTACT, next(self._seq))
        created = dt.datetime.combine(self.day(known_for_days), dt.time(9))
        cols = {"Id": cid, "FirstName": first_name, "LastName": "Tester", "CreatedDate": created, **extra}
        self._exec(
            f'INSERT INTO "Contact" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})', list(cols.values())
        )
        return cid

    def account(self, name: str) -> str:
        """An account of that name, for contacts to belong to (`contact(..., AccountId=...)`)."""
        aid = ids.make(ids.ACCOUNT, next(self._seq))
        self._exec(
            'INSERT INTO "Account" ("Id", "Name", "CreatedDate", "SystemModstamp") VALUES (?, ?, ?, ?)',
            [aid, name, dt.datetime.combine(self.day(400), dt.time(9)), dt.datetime.combine(self.day(400), dt.time(9))],
        )
        return aid

    def task(
        self,
        who: str | None,
        days_ago: int,
        subject: str,
        *,
        subtype: str = "Task",
        call_type: str | None = None,
        what: str | None = None,
        deleted: bool = False,
        seconds: int | None = None,
    ) -> str:
        tid = ids.make(ids.TASK, next(self._seq))
        self._exec(
            'INSERT INTO "Task" ("Id", "WhoId", "WhatId", "Subject", "ActivityDate", "Status", "TaskSubtype", '
            '"CallType", "CallDurationInSeconds", "IsClosed", "IsDeleted", "CreatedDate") '
            "VALUES (?, ?, ?, ?, ?, 'Completed', ?, ?, ?, true, ?, ?)",
            [
                tid,
                who,
                what,
                subject,
                self.day(days_ago),
                subtype,
                call_type,
                seconds,
                deleted,
                dt.datetime.combine(self.day(days_ago), dt.time(10)),
            ],
        )
        return tid

    def email_out(self, who: str, days_ago: int, subject: str = "Product update") -> str:
        return self.task(who, days_ago, subject, subtype="Email")

    def reply(self, who: str, days_ago: int, subject: str = "Re: Product update") -> str:
        return self.task(who, days_ago, subject, subtype="Email")

    def call(self, who: str, days_ago: int, subject: str = "Call", *, inbound: bool = True, seconds: int = 600) -> str:
        return self.task(
            who, days_ago, subject, subtype="Call", call_type="Inbound" if inbound else "Outbound", seconds=seconds
        )

    def meeting(self, who: str, days_ago: int, subject: str = "Meeting") -> str:
        eid = ids.make(ids.EVENT, next(self._seq))
        start = dt.datetime.combine(self.day(days_ago), dt.time(14))
        self._exec(
            'INSERT INTO "Event" ("Id", "WhoId", "Subject", "StartDateTime", "EndDateTime", "ActivityDateTime", '
            '"DurationInMinutes", "IsAllDayEvent", "CreatedDate") VALUES (?, ?, ?, ?, ?, ?, 60, false, ?)',
            [eid, who, subject, start, start + dt.timedelta(hours=1), start, start - dt.timedelta(days=7)],
        )
        return eid

    def familiar_contact(self, first_name: str = "Ada") -> str:
        """Two replies and a discovery call 90 days ago: Familiar until the call turns 120 days old."""
        cid = self.contact(first_name)
        self.reply(cid, 10)
        self.reply(cid, 30)
        self.meeting(cid, 90, "Discovery call")
        return cid

    def forever_contact(self, first_name: str = "Ada") -> str:
        """Known 900 days, a reply in each of the last 6 quarters, listening and a reference call: Forever."""
        cid = self.contact(first_name, known_for_days=900)
        self.meeting(cid, 800, "First meeting")
        for q in range(6):
            self.reply(cid, 10 + 91 * q)
        self.meeting(cid, 40, "Discovery session")
        self.call(cid, 60, "Reference call for a prospect")
        return cid

    def load_demo(self, contacts: int, seed: int) -> None:
        """A realistic org from the demo generator, dated to this org's as-of."""
        crm = LocalCrm.open(self.database)
        try:
            demo.generate(crm, contacts=contacts, seed=seed, as_of=self.as_of)
        finally:
            crm.close()

    def sync(self, *, days_later: int = 0, dry_run: bool = False, rules: Path | None = None) -> sync.SyncResult:
        if not self.database.exists():
            LocalCrm.create(self.database).close()
        return sync.run(
            self.config, as_of=self.as_of + dt.timedelta(days=days_later), dry_run=dry_run, rules_file=rules
        )

    def fields(self, cid: str) -> dict[str, Any]:
        crm = LocalCrm.open(self.database)
        try:
            row = crm.con.execute(f'SELECT {", ".join(TRUST_FIELDS)} FROM "Contact" WHERE "Id" = ?', [cid]).fetchone()
        finally:
            crm.close()
        assert row is not None, f"no contact {cid}"
        names = ["stage", "since", "flags", "next_step", "reason", "version", "held_until", "previous"]
        return dict(zip(names, row, strict=True))

    def snapshot_fields(self) -> list[tuple[Any, ...]]:
        """Every contact's trust fields, without the record's modification stamp."""
        return [row[:-1] for row in self.snapshot()]

    def snapshot(self) -> list[tuple[Any, ...]]:
        crm = LocalCrm.open(self.database)
        try:
            return crm.con.execute(
                f'SELECT "Id", {", ".join(TRUST_FIELDS)}, "SystemModstamp" FROM "Contact" ORDER BY "Id"'
            ).fetchall()
        finally:
            crm.close()


SPARK_TESTS = "tests/spark/"


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker runs on cores of its own (`-n 2` on 2 cores: one each), as a sync deployed beside
    other jobs does under a cpuset. Unpinned, every worker's DuckDB and JVM start a thread per core of the machine
    and the workers' threads take turns on the same cores."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.startswith("gw") and count.isdigit() and hasattr(os, "sched_setaffinity")):
        return
    cores, workers, index = sorted(os.sched_getaffinity(0)), int(count), int(worker[2:])
    if 1 < workers <= len(cores):
        with contextlib.suppress(OSError):  # a sandbox that refuses it: the worker runs unpinned, as before
            os.sched_setaffinity(0, cores[index % workers :: workers])


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (`-n auto`, the README's test command, with pyproject's `--dist loadscope`), each module is
    a unit of work for one worker (its module-scoped fixtures are built once), and the tests in tests/spark/ are
    one unit together: one JVM to start and warm up (tests/spark/conftest.py's session), not one per worker; its
    first Spark sync costs about three later ones. Units go out by their number of tests, the most first (xdist's
    order), so the Spark unit starts within seconds, not last. With `--dist load` every other test is a unit.

    xdist's own `--dist loadgroup` cannot do this with pytest 9.2: it marks a group by renaming each test's node id,
    which pytest 9.2 no longer lets a plugin do, and the groups are silently ignored. Another `--dist` is honoured
    as it is."""
    dist = config.getoption("dist")
    if dist not in ("load", "loadscope"):
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - called only when xdist runs the session

    scheduler = LoadScopeScheduling(config, log)
    scheduler._split_scope = functools.partial(_work_unit, by_module=dist == "loadscope")
    return scheduler


def _work_unit(nodeid: str, *, by_module: bool) -> str:
    if nodeid.startswith(SPARK_TESTS):
        return SPARK_TESTS
    return nodeid.split("::", 1)[0] if by_module else nodeid


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    o = Org(tmp_path)
    LocalCrm.create(o.database).close()
    yield o
    o.release()
