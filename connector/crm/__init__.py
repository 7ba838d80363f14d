"""CRM backends. Each one exposes `crm_contact` and `crm_activity` on a DuckDB connection for the engine, and
writes a plan of changed fields back. The local CRM is the embedded default; Salesforce keeps a local mirror
of what it pulled in the same shape, so the engine never knows which one it reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb
from sqlglot import exp

from connector.config import ActivitiesSection, EngineSection, FieldsSection


@dataclass(frozen=True)
class RuleNeeds:
    """All a backend knows of a rule set: the fields to pull, and the values its picklists must accept."""

    contact_fields: tuple[str, ...] = ()
    activity_fields: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    flag_labels: tuple[str, ...] = ()
    opportunities: bool = False  # the rules' outcomes read Opportunity and OpportunityContactRole (calibrate)
    gone_fields: tuple[str, ...] = ()  # Contact fields a contact_gone outcome reads (calibrate), when the org has them


@dataclass(frozen=True)
class RecordFailure:
    """One record the CRM refused; it stays in the next run's plan, since its fields still differ."""

    record_id: str
    code: str
    message: str
    transient: bool = False


@dataclass
class ApplyResult:
    changed: int = 0
    failures: list[RecordFailure] = field(default_factory=list)
    api_calls: int = 0


@dataclass
class FollowUpResult:
    """What one pass over the follow-up Tasks did. `released`: closed marked tasks whose flag has cleared, their
    marker turned to `[TL:<flag>:cleared]` so that the flag opening again later gets a new task."""

    created: int = 0
    updated: int = 0
    closed: int = 0
    released: int = 0
    failures: list[RecordFailure] = field(default_factory=list)


class CrmBackend(Protocol):
    con: duckdb.DuckDBPyConnection
    api_calls: int  # CRM API calls this backend has spent so far in this run (0 for the local CRM)

    def picklist_values(self) -> dict[str, list[str]]: ...

    def tune(self, engine: EngineSection, resolve: Callable[[Path], Path]) -> None: ...

    def prepare(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        """Bring the data up to date (pull) and expose `crm_contact` / `crm_activity` (one row per activity and
        contact who took part, dated by the `activities` policy; the defaults when None). See
        connector.crm.local.activities for its columns."""

    def pull(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        """The first half of `prepare`: bring the data up to date, expose nothing yet."""

    def expose(self, fields: FieldsSection, activities: ActivitiesSection | None = None) -> None:
        """The second half of `prepare`: `crm_contact` / `crm_activity` over the data as `pull` left it."""

    def activities_of(self, only: str | None) -> exp.Expr:
        """`crm_activity`'s rows as `expose` defined them; with `only` (a table of contact Ids), at least those
        contacts' rows, picked before the facts are joined: what a sync that computes a few contacts reads."""

    def signature(self) -> str:
        """A cheap digest of everything the engine reads, after `pull`: equal digests, equal data."""
        ...

    def usable_fields(self, fields: FieldsSection) -> FieldsSection:
        """`fields` less the optional ones (FieldsSection.OPTIONAL) this CRM lacks: what a sync reads and writes
        here. Call after `prepare` or `prepare_write`."""

    def prepare_write(self, fields: FieldsSection) -> None:
        """Instead of `prepare`, when the relations come from elsewhere (a warehouse copy): ready to `apply` a plan
        streamed onto `con`, without pulling anything."""

    def apply(self, plan_table: str, fields: FieldsSection, rules_version: str) -> ApplyResult: ...

    def sync_follow_ups(self, desired_table: str) -> FollowUpResult:
        """Make the open follow-up Tasks of the contacts in `crm_contact` match `desired_table` (one row per open
        flag: cid, owner_id, flag_id, subject, due_date; see connector.follow_up): create, update, close, never
        duplicate. Called after `apply`, never on a dry run."""

    def close(self) -> None: ...
