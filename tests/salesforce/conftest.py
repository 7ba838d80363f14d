"""Fixtures for the Salesforce journeys: a fake org at the HTTP layer, a config pointing at it, and a recorded
clock and sleep, so back-off and polling cost no time and can be asserted on. A sleep moves the org's clock too,
as a real wait would: the fake org's Bulk jobs finish by the org's time, not by how often they are polled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import responses

from connector.commands import sync
from connector.config import Config, CrmSection, RulesSection, SalesforceSection, StateSection
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import backend
from tests.conftest import DEFAULT_RULES
from tests.salesforce import fake_org
from tests.salesforce.fake_org import FakeOrg


@dataclass
class Clock:
    """The run's monotonic clock in a test: it moves only when the connector sleeps or a hung call times out."""

    t: float = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Run:
    """One scenario: the fake org, the config, what the connector slept, and its clocks. `client_skew` is how far
    this machine's wall clock is ahead of the org's."""

    org: FakeOrg
    folder: Path
    waits: list[float] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)
    client_skew: dt.timedelta = dt.timedelta(0)
    settings: dict[str, Any] = field(default_factory=dict)
    rsps: responses.RequestsMock | None = None  # to add an endpoint the fake org does not serve

    @property
    def as_of(self) -> dt.date:
        return self.org.now.date()

    def config(self, **settings: Any) -> Config:
        merged = {
            "username": fake_org.USERNAME,
            "mirror": self.folder / "mirror.duckdb",
            "poll_seconds": 0.5,
            **self.settings,
            **settings,
        }
        return Config(
            crm=CrmSection(backend="salesforce"),
            salesforce=SalesforceSection(**merged),
            state=StateSection(path=self.folder / "state.duckdb"),
            rules=RulesSection(path=DEFAULT_RULES),
        )

    def sync(self, *, dry_run: bool = False, **settings: Any) -> sync.SyncResult:
        return sync.run(self.config(**settings), as_of=self.as_of, dry_run=dry_run)

    def mirror_stamp(self) -> str | None:
        crm = LocalCrm.open(self.folder / "mirror.duckdb")
        try:
            return crm.meta("salesforce.watermark.Task")
        finally:
            crm.close()


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("SF_PASSWORD", fake_org.PASSWORD)
    monkeypatch.setenv("SF_SECURITY_TOKEN", fake_org.SECURITY_TOKEN)
    org = FakeOrg()
    scenario = Run(org, tmp_path)
    org.on_wait = scenario.clock.advance

    def sleep(seconds: float) -> None:
        scenario.waits.append(seconds)
        scenario.clock.advance(seconds)
        org.advance(seconds=seconds)  # the org's time moves while the connector waits: its Bulk jobs work

    monkeypatch.setattr(
        backend,
        "RUNTIME",
        backend.Runtime(sleep=sleep, now=lambda: org.now + scenario.client_skew, clock=scenario.clock),
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        org.install(rsps)
        scenario.rsps = rsps
        yield scenario
