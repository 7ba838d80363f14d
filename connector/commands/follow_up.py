"""Follow-up Tasks (optional, `[follow_up] enabled`): each open flag becomes one open Task for the contact's owner.

The subject is `subject_prefix` + the flag's own next step + the marker `[TL:<flag id>]`; the due date
(ActivityDate) is the run's as-of date + `due_in_days`. The marker, on a Task of the contact (WhoId), is how a
later run finds the task again, on the local CRM and in Salesforce alike: Subject is filterable in SOQL, and the
Task tables of both backends have it.

One set-based pass compares the desired tasks (built here from `tl_place`) with the marked tasks the backend
holds, and gives each backend four small tables to apply:
- create: an open flag with no marked task (open or closed) of its contact and flag;
- update: the open marked task of an open flag whose subject, owner or missing due date differ. A due date,
  once set, is never moved: one that slid every day would never fall due, and the owner may have changed it;
- close: an open marked task whose flag has cleared (and any duplicate beside the oldest one): Status
  Completed, and the marker becomes `[TL:<flag id>:cleared]`;
- release: a marked task the owner closed while its flag was open, once that flag has cleared: only the marker
  becomes `[TL:<flag id>:cleared]`.

Reopen policy: a task the owner closes while its flag is still open is the owner's decision. It is not reopened,
and no new task is created while that flag stays open. When the flag clears, the closed task is released, so
the flag opening again later gets a new task. Every decision is read from the tasks themselves, never from run
history, so a run killed half way converges on the next one.

Marked tasks (any Subject containing `[TL:`) are never activities for the ladder: the activity views leave them
out (`LocalCrm.prepare`, which the Salesforce mirror uses too).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import duckdb
from sqlglot import exp

from connector import sql
from connector.config import FollowUpSection
from connector.crm import FollowUpResult
from connector.crm.follow_ups import SUBJECT_MAX, marker, released_marker
from connector.engine import texts
from connector.engine.relations import CONTACTS, PLACE, flag_col
from connector.ruleset.compiler import RuleSet

if TYPE_CHECKING:
    from connector.crm import CrmBackend

DESIRED_TABLE = "tl_follow_up_desired"

_ONE_FLAG = """
SELECT p.cid, c."OwnerId" AS owner_id, $flag_id AS flag_id,
       $prefix || left(trim(regexp_replace($text, '\\s+', ' ', 'g')), $room) || $mark AS subject,
       CAST($as_of + $due AS DATE) AS due_date
FROM $place p LEFT JOIN $contacts c ON c."Id" = p.cid
WHERE $flag
"""
_NONE = (
    "SELECT NULL::VARCHAR AS cid, NULL::VARCHAR AS owner_id, NULL::VARCHAR AS flag_id, "
    "NULL::VARCHAR AS subject, NULL::DATE AS due_date WHERE false"
)


DESIRED_COLUMNS = (
    ("cid", "VARCHAR"),
    ("owner_id", "VARCHAR"),
    ("flag_id", "VARCHAR"),
    ("subject", "VARCHAR"),
    ("due_date", "DATE"),
)


def desired_statement(rules: RuleSet, section: FollowUpSection) -> exp.Expr:
    """The statement that makes `tl_follow_up_desired` from `tl_place` and `crm_contact`, on either engine."""
    parts = []
    for flag in rules.flags:
        # Room is kept for the released marker, so releasing a task never pushes its subject past 255.
        room = max(0, SUBJECT_MAX - len(section.subject_prefix) - len(" " + released_marker(flag.id)))
        parts.append(
            sql.q(
                _ONE_FLAG,
                flag_id=flag.id,
                prefix=section.subject_prefix,
                text=texts.template(flag.next_step, rules),
                room=room,
                mark=" " + marker(flag.id),
                due=int(section.due_in_days),
                place=sql.table(PLACE.name),
                contacts=sql.table(CONTACTS.name),
                flag=sql.col(flag_col(flag.id), "p"),
            )
        )
    body = parts[0] if parts else sql.q(_NONE)
    for part in parts[1:]:
        body = exp.union(body, part, distinct=False)
    return sql.create_temp(DESIRED_TABLE, body)


def build_desired(con: duckdb.DuckDBPyConnection, rules: RuleSet, section: FollowUpSection, as_of: dt.date) -> int:
    """`tl_follow_up_desired`: one row per open flag of every placed contact, with the task it should have."""
    sql.run(con, desired_statement(rules, section), {"as_of": as_of})
    return int(sql.scalar(con, sql.q("SELECT count(*) FROM $t", t=sql.table(DESIRED_TABLE))))


def sync(crm: CrmBackend, rules: RuleSet, section: FollowUpSection, as_of: dt.date) -> FollowUpResult:
    """Build the desired tasks from this run's placement and let the backend make its tasks match them."""
    build_desired(crm.con, rules, section, as_of)
    return crm.sync_follow_ups(DESIRED_TABLE)
