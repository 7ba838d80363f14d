"""The follow-up Tasks (connector.follow_up) kept in step with the org.

The marked Tasks are read from the mirror (pulled with the other Tasks, incrementally); only what differs is
sent, through sObject Collections: POST for new tasks, one PATCH stream for updates, closes and releases. What
the org accepted goes into the mirror at once; refused records come back as failures and, since the mirror still
differs, are planned again next run. Nothing to do costs no API call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb

from connector import log
from connector.crm import ApplyResult, FollowUpResult
from connector.crm import follow_ups as follow_up
from connector.crm.salesforce import follow_up_records, mirror
from connector.crm.salesforce.push import Pusher
from connector.crm.salesforce.refusals import salesforce_errors, stopped
from connector.errors import TrustLadderError

_log = log.get("trust_ladder.salesforce")


def sync(
    con: duckdb.DuckDBPyConnection,
    pusher: Pusher,
    desired_table: str,
    *,
    now: Callable[[], dt.datetime],
    calls: Callable[[], int],
) -> FollowUpResult:
    """Create, update, close and release the marked Tasks so the org matches `desired_table`."""
    planned = follow_up.diff(con, desired_table)
    result = FollowUpResult()
    if planned.empty:
        return result
    _log.info(
        "salesforce.follow_ups",
        create=planned.create,
        update=planned.update,
        close=planned.close,
        release=planned.release,
    )
    creates, patches, kinds = follow_up_records.records(con)
    try:
        _write(con, pusher, creates, patches, kinds, result, now)
    except TrustLadderError as exc:
        done = result.created + result.updated + result.closed + result.released
        stopped(exc, ApplyResult(changed=done, failures=result.failures), calls(), "salesforce.follow_ups_stopped")
        raise
    _log.info(
        "salesforce.follow_ups_written",
        created=result.created,
        updated=result.updated,
        closed=result.closed,
        released=result.released,
        failed=len(result.failures),
        api_calls=calls(),
    )
    return result


def _write(
    con: duckdb.DuckDBPyConnection,
    pusher: Pusher,
    creates: list[tuple[str, dict[str, Any]]],
    patches: list[tuple[str, dict[str, Any]]],
    kinds: dict[str, str],
    result: FollowUpResult,
    now: Callable[[], dt.datetime],
) -> None:
    with salesforce_errors("writing follow-up Tasks"):
        for saved in pusher.tasks("POST", creates):
            mirror.created_tasks(con, [s for s in saved if s.id], now().astimezone(dt.UTC).replace(tzinfo=None))
            result.created += sum(1 for s in saved if s.id)
            result.failures.extend(s.failure for s in saved if s.failure)
        for saved in pusher.tasks("PATCH", patches):
            mirror.patched_tasks(con, [s for s in saved if s.id])
            follow_up_records.tally(saved, kinds, result)
