"""Follow-up Tasks as Salesforce records: what the diff tables ask to create and patch, and the tally of what the
org accepted (connector.crm.follow_ups decides; the backend sends)."""

from __future__ import annotations

from typing import Any

import duckdb

from connector.crm import FollowUpResult
from connector.crm import follow_ups as follow_up
from connector.crm.salesforce import mirror
from connector.crm.salesforce.push import Saved


def records(
    con: duckdb.DuckDBPyConnection,
) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """(tasks to create, patches to send, what each patched task id is: updated, closed or released)."""
    creates = [
        (
            str(cid),
            {
                k: v
                for k, v in (
                    ("WhoId", cid),
                    ("OwnerId", owner),
                    ("Subject", subject),
                    ("ActivityDate", due.isoformat()),
                )
                if v is not None
            },
        )
        for cid, owner, subject, due in con.execute(
            f"SELECT cid, owner_id, subject, due_date FROM {follow_up.CREATE_TABLE} ORDER BY cid, flag_id"
        ).fetchall()
    ]
    kinds: dict[str, str] = {}
    patches: list[tuple[str, dict[str, Any]]] = []
    for task_id, subject, owner, due, ch_subject, ch_owner, ch_due in con.execute(
        f"SELECT task_id, subject, owner_id, due_date, ch_subject, ch_owner, ch_due "
        f"FROM {follow_up.UPDATE_TABLE} ORDER BY task_id"
    ).fetchall():
        rec: dict[str, Any] = {"id": task_id}
        if ch_subject:
            rec["Subject"] = subject
        if ch_owner:
            rec["OwnerId"] = owner
        if ch_due:
            rec["ActivityDate"] = due.isoformat()
        patches.append((task_id, rec))
        kinds[task_id] = "updated"
    for table, kind, extra in (
        (follow_up.CLOSE_TABLE, "closed", {"Status": mirror.CLOSED_STATUS}),
        (follow_up.RELEASE_TABLE, "released", {}),
    ):
        for task_id, subject in con.execute(f"SELECT task_id, subject FROM {table} ORDER BY task_id").fetchall():
            patches.append((task_id, {"id": task_id, "Subject": subject, **extra}))
            kinds[task_id] = kind
    return creates, patches, kinds


def tally(saved: list[Saved], kinds: dict[str, str], result: FollowUpResult) -> None:
    """Count one batch of patches the org answered: refused, updated, closed or released."""
    for s in saved:
        if s.failure:
            result.failures.append(s.failure)
        elif kinds[s.key] == "updated":
            result.updated += 1
        elif kinds[s.key] == "closed":
            result.closed += 1
        else:
            result.released += 1
