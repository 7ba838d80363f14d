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
relations or email costs one probe of an empty table. Every statement is made by connector.sql; the only
config text that reaches SQL, the date policy's field names, is checked against a fixed list and enters as
identifiers.
"""

from __future__ import annotations

import duckdb
from sqlglot import exp

from connector import ids, sql, vocabulary
from connector.config import EVENT_DATE_FIELDS, TASK_DATE_FIELDS, ActivitiesSection
from connector.crm import follow_ups

REL_TABLE = "crm_act_rel"  # obj, aid, rid (a person), declined, rel_id, known (a Contact the CRM holds)
MAIL_TABLE = "crm_act_mail"  # aid, who, incoming, at, replies_ours, replies_to: per Task with an EmailMessage (a step)
MAIL_PEOPLE_TABLE = "crm_act_mail_people"  # aid, cid, incoming, at, replies_ours: per email and contact (a step)
ANSWERS_TABLE = "crm_act_answers"  # aid, cid, answers_ours: per incoming email and contact (a step)
EMAIL_TABLE = "crm_act_email"  # arow, who, incoming, answers_primary: per Task with an EmailMessage (a step)
ACTS_TABLE = "crm_act_acts"  # aid, obj, arow, who, who_declined, attendees: live activities with relations (a step)
FACTS_TABLE = "crm_act_facts"  # obj, arow, cid, is_primary, declined, attendees, has_email, incoming, answers_ours,
# replies_to
ANSWER_WINDOW_DAYS = 30  # an incoming email within this many days of an outgoing one answers it

_DATE_TYPE = {
    "ActivityDate": "DATE",
    "CompletedDateTime": "TIMESTAMP",
    "CreatedDate": "TIMESTAMP",
    "ActivityDateTime": "TIMESTAMP",
    "StartDateTime": "TIMESTAMP",
}

_REL = """
SELECT g.*, c."Id" IS NOT NULL AS known FROM (
SELECT obj, aid, rid, bool_or(declined) AS declined, min(rel_id) AS rel_id FROM (
  SELECT 'Task' AS obj, "TaskId" AS aid, "RelationId" AS rid, false AS declined, "Id" AS rel_id FROM "TaskRelation"
  WHERE NOT COALESCE("IsDeleted", false) AND NOT COALESCE("IsWhat", false) AND "RelationId" LIKE $contact
  UNION ALL
  SELECT 'Event', "EventId", "RelationId", COALESCE("Status" = 'Declined', false), "Id" FROM "EventRelation"
  WHERE NOT COALESCE("IsDeleted", false) AND NOT COALESCE("IsWhat", false)
    AND ("RelationId" LIKE $contact OR "RelationId" LIKE $lead OR "RelationId" LIKE $user)
) WHERE aid IS NOT NULL AND rid IS NOT NULL GROUP BY obj, aid, rid) g
LEFT JOIN (SELECT "Id" FROM "Contact" WHERE NOT COALESCE("IsDeleted", false) AND length("Id") = 18) c
  ON c."Id" = g.rid
"""
# Per email Task: its first message's direction and time, whether it replies to one of ours, the email Task it
# replies to (whoever wrote it: a thank-you in the thread of their feedback refers to it), the Task's WhoId and
# its row number (`arow`, the Task's rowid: the view joins on it, an integer, not on an 18-character Id).
_MAIL = """
SELECT m.aid, t.rowid AS arow, t."WhoId" AS who, m.incoming, m."at", m.replies_ours, m.replies_to
FROM (SELECT m."ActivityId" AS aid, arg_min(m."Incoming", COALESCE(m."MessageDate", m."CreatedDate")) AS incoming,
             min(COALESCE(m."MessageDate", m."CreatedDate")) AS "at",
             bool_or(COALESCE(o."Incoming" = false, false)) AS replies_ours, min(o."ActivityId") AS replies_to
      FROM "EmailMessage" m
      LEFT JOIN (SELECT "Id", "Incoming", "ActivityId" FROM "EmailMessage" WHERE NOT COALESCE("IsDeleted", false)) o
        ON o."Id" = m."ReplyToEmailMessageId"
      WHERE NOT COALESCE(m."IsDeleted", false) AND m."ActivityId" LIKE $task
      GROUP BY m."ActivityId") m
JOIN "Task" t ON t."Id" = m.aid
"""
# Every (email, contact on it), for the as-of join: the Task's WhoId and its other contacts.
_MAIL_PEOPLE = """
SELECT aid, who AS cid, incoming, "at", replies_ours FROM crm_act_mail WHERE who LIKE $contact
UNION ALL
SELECT r.aid, r.rid, m.incoming, m."at", m.replies_ours FROM crm_act_rel r JOIN crm_act_mail m ON m.aid = r.aid
WHERE r.obj = 'Task' AND r.rid LIKE $contact AND r.rid IS DISTINCT FROM m.who
"""
# An incoming email answers ours when it replies to an outgoing EmailMessage, or when the latest outgoing email
# to the same contact before it is at most ANSWER_WINDOW_DAYS older (an as-of join, sorted, not a nested loop).
_ANSWERS = """
SELECT i.aid, i.cid, COALESCE(i.replies_ours, false) OR COALESCE(i."at" - o."at" <= $window, false) AS answers_ours
FROM (SELECT * FROM crm_act_mail_people WHERE incoming) i
ASOF LEFT JOIN (SELECT cid, "at" FROM crm_act_mail_people WHERE incoming = false AND "at" IS NOT NULL) o
  ON i.cid = o.cid AND i."at" > o."at"
"""
# Per email Task, what the view joins: direction, and whether it answers ours for the Task's own contact.
_EMAIL = """
SELECT m.arow, m.who, m.incoming, m.replies_to,
       CASE WHEN m.incoming THEN COALESCE(a.answers_ours, false) ELSE false END AS answers_primary
FROM crm_act_mail m LEFT JOIN crm_act_answers a ON a.aid = m.aid AND a.cid = m.who
"""
# The live activities with relations: their row number, WhoId, how many people they have, whether the WhoId
# declined.
_ACTS = """
WITH keys AS (SELECT DISTINCT aid, obj FROM crm_act_rel),
who AS (SELECT k.aid, k.obj, t.rowid AS arow, t."WhoId" AS who FROM keys k JOIN "Task" t ON t."Id" = k.aid
        WHERE k.obj = 'Task' AND NOT COALESCE(t."IsDeleted", false)
        UNION ALL
        SELECT k.aid, k.obj, e.rowid, e."WhoId" FROM keys k JOIN "Event" e ON e."Id" = k.aid
        WHERE k.obj = 'Event' AND NOT COALESCE(e."IsDeleted", false)),
n AS (SELECT aid, count(*) AS n FROM crm_act_rel GROUP BY aid)
SELECT w.aid, w.obj, w.arow, w.who, COALESCE(p.declined, false) AS who_declined,
       CAST(COALESCE(n.n, 0) + CASE WHEN w.who IS NOT NULL AND p.rid IS NULL THEN 1 ELSE 0 END AS INTEGER) AS attendees
FROM who w LEFT JOIN crm_act_rel p ON p.aid = w.aid AND p.rid = w.who LEFT JOIN n ON n.aid = w.aid
"""
# Every contact on an activity with relations or an EmailMessage: for one with relations, the WhoId's row and
# the others' (with, for the other contacts of an email Task, whether it answers ours for them); for an email Task
# without relations, its WhoId's row. `no_day`/`no_bool` are always NULL (see `rows`).
_FACTS = """
WITH people AS (
  SELECT obj, arow, who AS cid, true AS is_primary, who_declined AS declined, attendees,
         NULL::BOOLEAN AS answers_other
  FROM crm_act_acts WHERE who LIKE $contact
  UNION ALL
  SELECT a.obj, a.arow, r.rid, false, r.declined, a.attendees, x.answers_ours
  FROM crm_act_rel r JOIN crm_act_acts a ON a.aid = r.aid
  LEFT JOIN crm_act_answers x ON x.aid = r.aid AND x.cid = r.rid
  WHERE r.known AND r.rid IS DISTINCT FROM a.who)
SELECT p.obj, p.arow, p.cid, p.is_primary, p.declined, p.attendees, e.arow IS NOT NULL AS has_email, e.incoming,
       CASE WHEN e.arow IS NULL THEN NULL WHEN p.is_primary THEN e.answers_primary
            ELSE COALESCE(p.answers_other, false) END AS answers_ours, e.replies_to,
       CAST(NULL AS DATE) AS no_day, CAST(NULL AS BOOLEAN) AS no_bool
FROM people p LEFT JOIN crm_act_email e ON p.obj = 'Task' AND e.arow = p.arow
UNION ALL
SELECT 'Task', e.arow, e.who, true, false, 1, true, e.incoming, e.answers_primary, e.replies_to, NULL, NULL
FROM crm_act_email e
WHERE e.who LIKE $contact AND e.arow NOT IN (SELECT arow FROM crm_act_acts WHERE obj = 'Task')
"""
# Contact relations of live activities whose contact the CRM does not hold (or holds malformed).
_UNKNOWN = """
SELECT a.obj, count(*), list(r.rel_id ORDER BY r.rel_id)[1:10]
FROM crm_act_rel r JOIN crm_act_acts a ON a.aid = r.aid
WHERE r.rid LIKE $contact AND NOT r.known
GROUP BY a.obj
"""
_ROWS = """
SELECT a."Id", COALESCE(f.cid, a."WhoId") AS "WhoId", $object AS object, $day AS day
FROM $table a LEFT JOIN (SELECT * FROM crm_act_facts WHERE obj = $object) f ON f.arow = $rowid
WHERE COALESCE(f.no_bool, NOT COALESCE(a."IsDeleted", false) AND (f.arow IS NOT NULL OR a."WhoId" LIKE $contact)
               AND $keep)
"""
# The derived columns, in connector.vocabulary.DERIVED_ACTIVITY_COLUMNS order; DaySource is added from the policy.
_DERIVED = """
SELECT f.incoming AS "Incoming", COALESCE(f.has_email, false) AS "HasEmailMessage", f.answers_ours AS "AnswersOurs",
       f.replies_to AS "RepliesTo",
       COALESCE(f.is_primary, true) AS "IsPrimary", COALESCE(f.attendees, 1) AS "Attendees",
       COALESCE(f.declined, false) AS "Declined",
       COALESCE(lower(trim(a."Subject")) LIKE 'canceled:%' OR lower(trim(a."Subject")) LIKE 'cancelled:%', false)
         AS "Cancelled",
       CAST(a."CreatedDate" AS DATE) AS "LoggedDate"
"""


# Each step's table is dropped once its last reader has run, so no statement holds more than a couple of them.
DONE_WITH = {
    MAIL_PEOPLE_TABLE: ANSWERS_TABLE,
    MAIL_TABLE: EMAIL_TABLE,
    ANSWERS_TABLE: FACTS_TABLE,
    EMAIL_TABLE: FACTS_TABLE,
}
KEPT_UNTIL_COUNTED = (ACTS_TABLE, REL_TABLE)  # read by `unknown_statement`, dropped after it
RELATION_OBJECTS = {"Task": "TaskRelation", "Event": "EventRelation"}


def fact_steps() -> list[tuple[str, exp.Expr]]:
    """The materialised steps of the people and email facts, in order: (table it makes, its query). Every engine
    runs these same trees (DuckDB here, Spark through connector.engine.dialect)."""
    contact = sql.lit(ids.CONTACT + "%")
    window = exp.Interval(this=exp.Literal.string(str(ANSWER_WINDOW_DAYS)), unit=exp.var("DAY"))
    return [
        (REL_TABLE, sql.q(_REL, contact=contact, lead=sql.lit(ids.LEAD + "%"), user=sql.lit(ids.USER + "%"))),
        (MAIL_TABLE, sql.q(_MAIL, task=sql.lit(ids.TASK + "%"))),
        (MAIL_PEOPLE_TABLE, sql.q(_MAIL_PEOPLE, contact=contact)),
        (ANSWERS_TABLE, sql.q(_ANSWERS, window=window)),
        (EMAIL_TABLE, sql.q(_EMAIL)),
        (ACTS_TABLE, sql.q(_ACTS)),
        (FACTS_TABLE, sql.q(_FACTS, contact=contact)),
    ]


def unknown_statement() -> exp.Expr:
    """Per activity object: contact relations of live activities whose contact the CRM does not hold (or holds
    malformed), their count and up to ten relation Ids."""
    return sql.q(_UNKNOWN, contact=sql.lit(ids.CONTACT + "%"))


def build_facts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, list[str]]]:
    """The people and email facts of every activity that has relations or an EmailMessage (needs `crm_contact`).
    One materialised step at a time, each dropped once read, so no statement holds more than a couple of hash
    tables over millions of rows; the view then joins on the activities' row numbers (integers).

    Returns, per relation object, the contact relations of live activities whose contact the CRM does not hold
    (or holds malformed): they credit nobody; their count and a few relation Ids."""
    for name, tree in fact_steps():
        sql.run(con, sql.create_temp(name, tree))
        for table, last_reader in DONE_WITH.items():
            if last_reader == name:
                sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(table)))
    unknown = {
        RELATION_OBJECTS[str(obj)]: (int(count), [str(i) for i in sample])
        for obj, count, sample in sql.run(con, unknown_statement()).fetchall()
    }
    for table in KEPT_UNTIL_COUNTED:
        sql.run(con, sql.q("DROP TABLE IF EXISTS $t", t=sql.table(table)))
    return unknown


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


def rows(obj: str, policy: ActivitiesSection, *, contact_rows: bool = True, only: str | None = None) -> exp.Select:
    """One object's rows of `crm_activity`, before the malformed ones are set aside: Id, WhoId, object, day, the
    Task/Event fields (NULL where the object lacks one) and the derived columns. The follow-up Tasks
    trust-ladder writes (a `[TL:` marker in the subject) and, unless counted, private Events are left out.
    `contact_rows=False` gives the object's own rows only (no facts joined), for the malformed-row checks.
    `only`: a table of contact Ids (`cid`); the rows of activities that credit none of them are left out before
    the facts are joined (a superset of those contacts' rows: the caller keeps theirs)."""
    day, source = day_expr(obj, policy)
    keep: list[exp.Expr] = []
    if obj == "Task":
        keep.append(sql.q('NOT COALESCE(a."Subject" LIKE $mark, false)', mark=follow_ups.MARK_LIKE))
    if obj == "Event" and not policy.count_private_events:
        keep.append(sql.q('NOT COALESCE(a."IsPrivate", false)'))
    if contact_rows:
        # DuckDB has no join hints, and builds a hash join on the side it guesses smaller. Filters on the
        # activity table alone, pushed into its scan, make it guess a few rows and build on millions of Task rows
        # with all their columns (five times slower at a million contacts). So every filter here, and the
        # engine's `day <= as_of`, also reads a column of the facts that is always NULL (`no_bool`, `no_day`):
        # they stay above the join, and the hash table is built on the facts.
        day = exp.Coalesce(this=day, expressions=[sql.col("no_day", "f")])
    table: exp.Expr = sql.table(obj)
    rowid = sql.col("rowid", "a")
    if only is not None and contact_rows:
        # Picked from the object's own table, whose size the planner knows, so the join is built on the few
        # contacts: filtering the whole view afterwards built it on every activity of the org.
        table = exp.Subquery(this=sql.q(_ONLY, table=sql.table(obj), only=sql.table(only), object=sql.lit(obj)))
        rowid = sql.col("tl_rowid", "a")
    tree = sql.q(
        _ROWS if contact_rows else _OWN_ROWS,
        object=sql.lit(obj),
        day=day,
        table=table,
        rowid=rowid,
        contact=sql.lit(ids.CONTACT + "%"),
        keep=sql.all_of(keep),
    )
    assert isinstance(tree, exp.Select)
    have = set(vocabulary.column_names(obj))
    cols: list[exp.Expr] = [
        sql.alias(_field(f) if f in have else exp.Null(), f) for f in vocabulary.raw_activity_fields()
    ]
    if contact_rows:
        derived = sql.q(_DERIVED)
        assert isinstance(derived, exp.Select)
        cols += [*derived.expressions, sql.alias(source, "DaySource")]
    tree = tree.select(*cols, append=True, copy=False)
    if not contact_rows and keep:
        tree = tree.where(sql.all_of(keep), copy=False)
    return tree


# What email integrations put before the subject they log: "Email: Re: Pricing" (Outlook and Gmail integrations,
# Einstein Activity Capture, Salesforce's own "Send an Email"), "[External] ..." (a mail gateway's tag). Reply
# and forward prefixes are kept: they say who wrote.
INTEGRATION_PREFIXES = r"^\s*((e-?mail\s*:|\[external\]|external\s*:)\s*)+"


def _field(name: str) -> exp.Expr:
    """A Task/Event field as rules read it: the subject an integration prefix wraps ("Email: Re: Pricing" is "Re:
    Pricing", a reply), notes cut to DESCRIPTION_CAP characters whatever the adapter stored."""
    column = sql.col(name, "a")
    if name == "Description":
        return sql.func("left", column, sql.lit(vocabulary.DESCRIPTION_CAP))
    if name == "Subject":
        return sql.q("regexp_replace($s, $p, '', 'i')", s=column, p=INTEGRATION_PREFIXES)
    return column


# An activity credits a contact through its WhoId, or through its people and email facts (relations, recipients).
_ONLY = """
SELECT *, rowid AS tl_rowid FROM $table
WHERE "WhoId" IN (SELECT cid FROM $only)
   OR rowid IN (SELECT arow FROM crm_act_facts WHERE obj = $object AND cid IN (SELECT cid FROM $only))
"""

_OWN_ROWS = """
SELECT a."Id", a."WhoId", $object AS object, $day AS day FROM $table a
WHERE NOT COALESCE(a."IsDeleted", false) AND a."WhoId" LIKE $contact
"""
