"""`crm_activity`: one row per (activity, contact who took part), with what Salesforce itself says about it.

Built set-based from the Salesforce-shaped tables, for the local CRM and the Salesforce mirror alike:

- **Who took part.** A Task credits its WhoId and every contact of its TaskRelation rows (IsWhat = false); an
  Event its WhoId and every contact of its EventRelation rows (IsWhat = false: invitees and, with Shared
  Activities, related people). One row per contact, never two when the WhoId is also a relation; relations to
  contacts the CRM does not hold (or holds malformed) are left out and counted by the caller. Lead and User
  relations credit nobody but count as attendees of an Event.
- **Direction.** An email Task's EmailMessage (ActivityId = the Task) gives `Incoming`; `AnswersOurs` is an
  incoming email that replies to an outgoing one (ReplyToEmailMessageId), or follows, within 30 days, an
  outgoing email to the same contact.
- **When.** `day` comes from the first field set in the `[activities]` date policy; `DaySource` names it;
  `LoggedDate` is when it was logged (CreatedDate).

The per-activity facts (people, email) are computed once per prepare into temp tables keyed by activity and
contact; `crm_activity` itself stays a view: each object's table LEFT JOINed to those facts, so an org without
relations or email costs one probe of an empty table. Every statement is made by connector.engine.sql; the only
config text that reaches SQL, the date policy's field names, is checked against a fixed list and enters as
identifiers.
"""

from __future__ import annotations

import duckdb
from sqlglot import exp

from connector import ids, vocabulary
from connector.config import EVENT_DATE_FIELDS, TASK_DATE_FIELDS, ActivitiesSection
from connector.crm import follow_ups
from connector.engine import sql

REL_TABLE = "crm_act_rel"  # obj, aid, rid (a person), declined: live people relations, one per (aid, rid)
EMAIL_TABLE = "crm_act_email"  # aid, incoming, at, replies_ours: per Task with an EmailMessage
PEOPLE_TABLE = "crm_act_people"  # aid, cid, is_primary, declined, attendees, has_email, incoming, at, replies_ours
FACTS_TABLE = "crm_act_facts"  # PEOPLE_TABLE's columns and answers_ours
ANSWER_WINDOW_DAYS = 30  # an incoming email within this many days of an outgoing one answers it

_DATE_TYPE = {"ActivityDate": "DATE", "CompletedDateTime": "TIMESTAMP", "CreatedDate": "TIMESTAMP",
              "ActivityDateTime": "TIMESTAMP", "StartDateTime": "TIMESTAMP"}

_REL = """
SELECT obj, aid, rid, bool_or(declined) AS declined FROM (
  SELECT 'Task' AS obj, "TaskId" AS aid, "RelationId" AS rid, false AS declined FROM "TaskRelation"
  WHERE NOT COALESCE("IsDeleted", false) AND NOT COALESCE("IsWhat", false) AND "RelationId" LIKE $contact
  UNION ALL
  SELECT 'Event', "EventId", "RelationId", COALESCE("Status" = 'Declined', false) FROM "EventRelation"
  WHERE NOT COALESCE("IsDeleted", false) AND NOT COALESCE("IsWhat", false)
    AND ("RelationId" LIKE $contact OR "RelationId" LIKE $lead OR "RelationId" LIKE $user)
) WHERE aid IS NOT NULL AND rid IS NOT NULL GROUP BY ALL
"""
_EMAIL = """
SELECT m."ActivityId" AS aid, arg_min(m."Incoming", COALESCE(m."MessageDate", m."CreatedDate")) AS incoming,
       min(COALESCE(m."MessageDate", m."CreatedDate")) AS "at", bool_or(o."Id" IS NOT NULL) AS replies_ours
FROM "EmailMessage" m
LEFT JOIN (SELECT "Id" FROM "EmailMessage" WHERE "Incoming" = false AND NOT COALESCE("IsDeleted", false)) o
  ON o."Id" = m."ReplyToEmailMessageId"
WHERE NOT COALESCE(m."IsDeleted", false) AND m."ActivityId" LIKE $task
GROUP BY m."ActivityId"
"""
# The activities with facts, their own WhoId, whether it is among their relations, and how many people they have.
_PEOPLE = """
WITH keys AS (SELECT DISTINCT aid, obj FROM (SELECT aid, obj FROM crm_act_rel
                                             UNION ALL SELECT aid, 'Task' FROM crm_act_email)),
who AS (SELECT k.aid, k.obj, t."WhoId" AS who FROM keys k JOIN "Task" t ON t."Id" = k.aid WHERE k.obj = 'Task'
        UNION ALL
        SELECT k.aid, k.obj, e."WhoId" FROM keys k JOIN "Event" e ON e."Id" = k.aid WHERE k.obj = 'Event'),
n AS (SELECT aid, count(*) AS n FROM crm_act_rel GROUP BY aid),
acts AS (SELECT w.aid, w.who, COALESCE(p.declined, false) AS who_declined,
                CAST(COALESCE(n.n, 0) + CASE WHEN w.who IS NOT NULL AND p.rid IS NULL THEN 1 ELSE 0 END AS INTEGER)
                  AS attendees
         FROM who w LEFT JOIN crm_act_rel p ON p.aid = w.aid AND p.rid = w.who LEFT JOIN n ON n.aid = w.aid),
people AS (SELECT aid, who AS cid, true AS is_primary, who_declined AS declined FROM acts WHERE who LIKE $contact
           UNION ALL
           SELECT r.aid, r.rid, false, r.declined FROM crm_act_rel r JOIN acts a ON a.aid = r.aid
           WHERE r.rid LIKE $contact AND r.rid IS DISTINCT FROM a.who
             AND r.rid IN (SELECT "Id" FROM crm_contact))
SELECT p.aid, p.cid, p.is_primary, p.declined, a.attendees, e.aid IS NOT NULL AS has_email, e.incoming, e."at",
       e.replies_ours
FROM people p JOIN acts a ON a.aid = p.aid LEFT JOIN crm_act_email e ON e.aid = p.aid
"""
# An incoming email answers ours when it replies to an outgoing EmailMessage, or when the latest outgoing email
# to the same contact before it is at most ANSWER_WINDOW_DAYS older (an as-of join, sorted, not a nested loop).
_FACTS = """
SELECT *, CASE WHEN has_email THEN false END AS answers_ours FROM crm_act_people WHERE incoming IS DISTINCT FROM true
UNION ALL
SELECT i.*, COALESCE(i.replies_ours, false) OR COALESCE(i."at" - o."at" <= $window, false) AS answers_ours
FROM (SELECT * FROM crm_act_people WHERE incoming) i
ASOF LEFT JOIN (SELECT cid, "at" FROM crm_act_people WHERE incoming = false AND "at" IS NOT NULL) o
  ON i.cid = o.cid AND i."at" > o."at"
"""
_ROWS = """
SELECT a."Id", COALESCE(f.cid, a."WhoId") AS "WhoId", $object AS object, $day AS day
FROM $table a LEFT JOIN crm_act_facts f ON f.aid = a."Id"
WHERE NOT COALESCE(a."IsDeleted", false) AND (f.aid IS NOT NULL OR a."WhoId" LIKE $contact)
"""
# The derived columns, in connector.vocabulary.DERIVED_ACTIVITY_COLUMNS order; DaySource is added from the policy.
_DERIVED = """
SELECT f.incoming AS "Incoming", COALESCE(f.has_email, false) AS "HasEmailMessage", f.answers_ours AS "AnswersOurs",
       COALESCE(f.is_primary, true) AS "IsPrimary", COALESCE(f.attendees, 1) AS "Attendees",
       COALESCE(f.declined, false) AS "Declined",
       COALESCE(lower(trim(a."Subject")) LIKE 'canceled:%' OR lower(trim(a."Subject")) LIKE 'cancelled:%', false)
         AS "Cancelled",
       CAST(a."CreatedDate" AS DATE) AS "LoggedDate"
"""


def build_facts(con: duckdb.DuckDBPyConnection) -> None:
    """The people and email facts of every activity that has relations or an EmailMessage (needs `crm_contact`)."""
    contact = sql.lit(ids.CONTACT + "%")
    sql.run(con, sql.create_temp(REL_TABLE, sql.q(_REL, contact=contact, lead=sql.lit(ids.LEAD + "%"),
                                                  user=sql.lit(ids.USER + "%"))))
    sql.run(con, sql.create_temp(EMAIL_TABLE, sql.q(_EMAIL, task=sql.lit(ids.TASK + "%"))))
    sql.run(con, sql.create_temp(PEOPLE_TABLE, sql.q(_PEOPLE, contact=contact)))
    window = exp.Interval(this=exp.Literal.string(str(ANSWER_WINDOW_DAYS)), unit=exp.var("DAY"))
    sql.run(con, sql.create_temp(FACTS_TABLE, sql.q(_FACTS, window=window)))
    sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(PEOPLE_TABLE)))


def unknown_relations(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, list[str]]]:
    """Per relation object: contact relations of live activities whose contact the CRM does not hold (or holds
    malformed), with a few of the relation Ids: they credit nobody."""
    out: dict[str, tuple[int, list[str]]] = {}
    for obj, parent, key in (("TaskRelation", "Task", "TaskId"), ("EventRelation", "Event", "EventId")):
        tree = sql.q("""
            SELECT count(*), list(r."Id" ORDER BY r."Id")[1:10] FROM $rel r JOIN $parent a ON a."Id" = r.$key
            WHERE NOT COALESCE(r."IsDeleted", false) AND NOT COALESCE(r."IsWhat", false)
              AND NOT COALESCE(a."IsDeleted", false) AND r."RelationId" LIKE $contact
              AND r."RelationId" NOT IN (SELECT "Id" FROM crm_contact)""",
                     rel=sql.table(obj), parent=sql.table(parent), key=sql.ident(key),
                     contact=sql.lit(ids.CONTACT + "%"))
        row = sql.run(con, tree).fetchone()
        if row and row[0]:
            out[obj] = (int(row[0]), [str(i) for i in row[1]])
    return out


def day_expr(obj: str, policy: ActivitiesSection, alias: str = "a") -> tuple[exp.Expr, exp.Expr]:
    """(the day, the name of the field it came from) for one object under the date policy."""
    names = policy.task_date if obj == "Task" else policy.event_date
    allowed = TASK_DATE_FIELDS if obj == "Task" else EVENT_DATE_FIELDS
    parts: list[tuple[str, exp.Expr]] = []
    for name in names:
        if name not in allowed:  # the config validates this; never let another name through
            raise ValueError(f"{name} is not a {obj} date field")
        column = sql.col(name, alias)
        parts.append((name, column if _DATE_TYPE[name] == "DATE" else exp.cast(column, exp.DataType.Type.DATE)))
    day = exp.Coalesce(this=parts[0][1], expressions=[p for _, p in parts[1:]]) if len(parts) > 1 else parts[0][1]
    source = sql.case(((exp.Not(this=exp.Is(this=p.copy(), expression=exp.Null())), sql.lit(n)) for n, p in parts))
    return day, source


def rows(obj: str, policy: ActivitiesSection, *, contact_rows: bool = True) -> exp.Select:
    """One object's rows of `crm_activity`, before the malformed ones are set aside: Id, WhoId, object, day, the
    Task/Event fields (NULL where the object lacks one) and the derived columns. The follow-up Tasks
    trust-ladder writes (a `[TL:` marker in the subject) and, unless counted, private Events are left out.
    `contact_rows=False` gives the object's own rows only (no facts joined), for the malformed-row checks."""
    day, source = day_expr(obj, policy)
    tree = sql.q(_ROWS if contact_rows else _OWN_ROWS, object=sql.lit(obj), day=day, table=sql.table(obj),
                 contact=sql.lit(ids.CONTACT + "%"))
    assert isinstance(tree, exp.Select)
    have = set(vocabulary.column_names(obj))
    cols: list[exp.Expr] = [sql.alias(sql.col(f, "a") if f in have else exp.Null(), f)
                            for f in vocabulary.raw_activity_fields()]
    if contact_rows:
        derived = sql.q(_DERIVED)
        assert isinstance(derived, exp.Select)
        cols += [*derived.expressions, sql.alias(source, "DaySource")]
    tree = tree.select(*cols, append=True, copy=False)
    if obj == "Task":
        tree = tree.where(sql.q('NOT COALESCE(a."Subject" LIKE $mark, false)', mark=follow_ups.MARK_LIKE),
                          copy=False)
    if obj == "Event" and not policy.count_private_events:
        tree = tree.where(sql.q('NOT COALESCE(a."IsPrivate", false)'), copy=False)
    return tree


_OWN_ROWS = """
SELECT a."Id", a."WhoId", $object AS object, $day AS day FROM $table a
WHERE NOT COALESCE(a."IsDeleted", false) AND a."WhoId" LIKE $contact
"""
