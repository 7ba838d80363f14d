"""A run with nothing to do ends before the engine.

A scheduled sync runs every 15 minutes; most of those runs find nothing new. What a sync writes depends only on
the CRM's data, the rules, the configuration and the evaluation day, so when all four are what they were at the end
of the last complete run, that run's result stands: the fields on every contact already are what this run would
write. Such a run pulls (that is how it learns nothing changed), compares one digest and stops: no classification,
no timeline, no plan.

The mark is kept only by a run that finished cleanly (written, nothing refused, nothing pending), taken after its
writes, so the digest includes them. Any other end leaves no mark behind: a run stopped in its write, a record
refused, a dry run or an audit. The day is part of the digest, so the first run of a day computes everything
that can move with time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from connector import log, state
from connector.commands.sync_steps import SyncResult
from connector.config import Config
from connector.crm import CrmBackend
from connector.ruleset.compiler import RuleSet

_log = log.get("trust_ladder.sync")

MARK = "sync.quiet_mark"  # the state store's meta key: the digest and the figures of the last complete run


@dataclass(frozen=True)
class Digest:
    """What a sync's outcome depends on, apart from the CRM's data (`data`, from the backend)."""

    data: str
    rules_version: str
    config: str
    as_of: dt.date

    def text(self) -> str:
        return f"{self.data}|{self.rules_version}|{self.config}|{self.as_of.isoformat()}"


def digest(crm: CrmBackend, cfg: Config, rules: RuleSet, as_of: dt.date) -> Digest:
    """After the pull. The config sections that change what is computed or written are part of it."""
    sections = cfg.model_dump_json(include={"crm", "fields", "activities", "follow_up", "rules", "engine"})
    return Digest(crm.signature(), rules.version, hashlib.sha256(sections.encode()).hexdigest(), as_of)


def unchanged(store: state.Store, now: Digest) -> dict[str, Any] | None:
    """The figures of the last complete run when nothing it depended on has changed since, else None."""
    kept = store.meta_value(MARK)
    if kept is None:
        return None
    try:
        mark = json.loads(kept)
    except json.JSONDecodeError:
        return None
    if mark.get("digest") != now.text():
        return None
    pending, _ = store.pending(limit=0)
    if pending:  # a refused record is retried by a full run
        return None
    figures = mark.get("figures")
    return figures if isinstance(figures, dict) else None


def stand(result: SyncResult, figures: dict[str, Any]) -> None:
    """This run's figures are the last complete run's: every contact is where it put it."""
    result.contacts = int(figures.get("contacts", 0))
    result.contacts_read = 0  # nor their activities: the summary says so, not "0 activities" of the org
    result.per_rung = {str(k): int(v) for k, v in figures.get("per_rung", {}).items()}
    result.flags = {str(k): int(v) for k, v in figures.get("flags", {}).items()}
    result.in_grace = int(figures.get("in_grace", 0))
    result.decaying = int(figures.get("decaying", 0))
    _log.info("sync.unchanged", contacts=result.contacts, reason="nothing changed since the last complete run")


def forget(store: state.Store) -> None:
    """Before anything is written: a run that stops from here on leaves no mark."""
    store.set_meta_value(MARK, None)


def keep(store: state.Store, after: Digest, result: SyncResult) -> None:
    """After a clean run's writes: the digest as the data now stands, with the run's figures."""
    mark = {
        "digest": after.text(),
        "figures": {
            "contacts": result.contacts,
            "per_rung": result.per_rung,
            "flags": result.flags,
            "in_grace": result.in_grace,
            "decaying": result.decaying,
        },
    }
    store.set_meta_value(MARK, json.dumps(mark))
