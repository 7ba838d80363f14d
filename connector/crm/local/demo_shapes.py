"""The demo org's relationship shapes beyond single-contact Tasks and Events (issue 8): who took part, which way an
email went, and when it really happened.

Added to a generated org, set-based in DuckDB (every choice is a hash of the record's Id and the seed, so the same
seed and evaluation date give the same rows), after the personas' own histories:
- Enhanced Email: an EmailMessage for every email Task logged since Enhanced Email was switched on
  (`ENHANCED_EMAIL_DAYS` before the evaluation date; older email has none, so the subject fallback stays in use):
  incoming for their replies (pointing at our previous email to them), outgoing for ours; customers who write
  first (an incoming email without "Re:"); our list emails (TaskSubtype ListEmail, one outgoing EmailMessage).
- Shared Activities: meetings with several contacts of the same account (EventRelation invitees, some declined,
  some not yet answered), calls with a colleague of the contact (TaskRelation), and 300-invitee webinars.
- Concerns and what came of them: a complaint, concern or escalation they raised (input that deserves thanks);
  for about half, the change we made on it and told them about ("Acted on: ..."), for half of the others a
  thank-you that names it ("Thanks for your patience during the outage"); for some outages, the bad patch
  worked through together ("Worked through: ..."), logged as README asks admins to.
- Calendar and logging habits: cancelled meetings ("Canceled: ..."), private events, backdated calls (logged days
  after their ActivityDate), outbound-only discovery call series (40 minutes, all dialled by us), and unanswered
  calls ("No answer" beside "Left voicemail").
`demo.generate(..., shapes=False)` leaves all of this out, for comparisons (bench/run_local.py).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.crm.local.store import LocalCrm

ENHANCED_EMAIL_DAYS = 200  # email logged in the last this-many days has an EmailMessage
WEBINAR_INVITEES = 300
CONTACTS_PER_WEBINAR = 4000  # one webinar per this many contacts
_NEW = 500_000_000_000  # numbering of the added Tasks and Events, clear of the generator's

# Per-mille shares; `h(x, salt)` is a deterministic 0..999 draw for a record.
_MACRO = (
    "CREATE OR REPLACE TEMP MACRO h(x, salt) AS "
    "CAST(hash(x || '/' || salt || '/' || getvariable('seed')) % 1000 AS INTEGER)"
)

_ACCOUNT_RANK = """
CREATE OR REPLACE TEMP TABLE shp_rank AS
SELECT "Id", "AccountId", "OwnerId", "Email", "CreatedDate",
       row_number() OVER (PARTITION BY "AccountId" ORDER BY "Id") - 1 AS r,
       count(*) OVER (PARTITION BY "AccountId") AS size,
       row_number() OVER (ORDER BY "Id") - 1 AS seq
FROM "Contact" WHERE NOT "IsDeleted"
"""

# New Tasks: customers who write first, list emails, outbound discovery call series, concerns and what came of them.
_NEW_TASKS = """
INSERT INTO "Task" ("Id", "WhoId", "AccountId", "OwnerId", "Subject", "ActivityDate", "Status", "Priority", "Type",
                    "TaskSubtype", "CallType", "CallDurationInSeconds", "CallDisposition", "IsClosed",
                    "CompletedDateTime", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
SELECT sf_id('00T', $new + row_number() OVER (ORDER BY c."Id", k.kind, k.i)), c."Id", c."AccountId", c."OwnerId",
       k.subject, CAST(k.at AS DATE), 'Completed', 'Normal', k.type, k.subtype, k.call_type, k.seconds,
       k.disposition, true, k.at, k.at, k.at, k.at, false
FROM shp_rank c JOIN "Contact" o ON o."Id" = c."Id",
LATERAL (
  SELECT 'first' AS kind, 0 AS i, 'Email: Question about ' || ['pricing', 'our roadmap', 'onboarding',
         'the contract'][1 + h(c."Id", 'topic') % 4] AS subject, 'Email' AS type, 'Email' AS subtype,
         NULL AS call_type, NULL::INTEGER AS seconds, NULL AS disposition,
         $as_of::TIMESTAMP - to_days(1 + h(c."Id", 'first-day') % 400) + INTERVAL 10 HOUR AS at
  WHERE h(c."Id", 'first') < 80
  UNION ALL
  SELECT 'list', i, 'List Email: ' || ['Spring newsletter', 'Happy holidays from all of us', 'Annual customer survey',
         'Product update'][1 + (i + h(c."Id", 'list-topic')) % 4], 'Email', 'ListEmail', NULL, NULL, NULL,
         $as_of::TIMESTAMP - to_days(20 + i * 90 + h(c."Id", 'list-day') % 60) + INTERVAL 9 HOUR
  FROM range(2) t(i) WHERE h(c."Id", 'list') < 300
  UNION ALL
  SELECT 'series', i, 'Call: discovery', 'Call', 'Call', 'Outbound', 2400, 'Connected',
         $as_of::TIMESTAMP - to_days(10 + i * 25 + h(c."Id", 'series-day') % 10) + INTERVAL 15 HOUR
  FROM range(3) t(i) WHERE h(c."Id", 'series') < 40
  UNION ALL
  -- A concern they raised; then, for some, what we changed because of it, and for some outages, the bad patch
  -- worked through together; for some of those we changed nothing for, a thank-you that names the concern.
  -- Logged by the account manager as plain Tasks, as README asks admins to.
  SELECT 'concern', x.step, [['Concern raised: delivery delays', 'Complaint: invoice errors',
           'Escalation: service outage'][1 + x.topic],
         ['Acted on: delivery dates now confirmed weekly, told them',
          'Acted on: invoices checked before they go out, told them',
          'Acted on: status page and outage alerts set up, told them'][1 + x.topic],
         'Worked through: the service outage, together',
         ['Thanks for flagging the delivery delays', 'Thank you for raising the invoice errors',
          'Thanks for your patience during the outage'][1 + x.topic]][1 + x.step], 'Other', 'Task', NULL, NULL, NULL,
         $as_of::TIMESTAMP - to_days(x.ago - x.step * (4 + h(c."Id", 'acted-day') % 10)) + INTERVAL 13 HOUR
  FROM (SELECT h(c."Id", 'concern-topic') % 3 AS topic, 8 + h(c."Id", 'concern-day') % 170 AS ago, step
        FROM range(4) t(step)) x
  WHERE h(c."Id", 'concern') < 25
    AND (x.step = 0 OR (x.step = 1 AND h(c."Id", 'acted') < 500) OR (x.step = 2 AND x.topic = 2
                                                                     AND h(c."Id", 'weathered') < 600)
         OR (x.step = 3 AND h(c."Id", 'acted') >= 500 AND h(c."Id", 'thanked-concern') < 500))
) k
WHERE k.at > o."CreatedDate" AND k.at < $as_of::TIMESTAMP
"""

_EMAILS = """
INSERT INTO "EmailMessage" ("Id", "ActivityId", "Incoming", "MessageDate", "FromAddress", "ToAddress", "Status",
                            "Subject", "ReplyToEmailMessageId", "IsDeleted", "CreatedDate", "LastModifiedDate",
                            "SystemModstamp")
WITH m AS (
  SELECT t."Id" AS aid, t."WhoId" AS who, t."Subject" AS subject, t."IsDeleted" AS deleted,
         COALESCE(t."CompletedDateTime", t."CreatedDate") AS at,
         t."Subject" LIKE 'Re:%' OR t."Subject" LIKE 'Email: Question about%' AS incoming,
         sf_id('02s', row_number() OVER (ORDER BY t."Id")) AS mid
  FROM "Task" t
  WHERE t."TaskSubtype" IN ('Email', 'ListEmail') AND t."WhoId" LIKE '003%'
    AND COALESCE(t."CompletedDateTime", t."CreatedDate") >= $as_of::TIMESTAMP - to_days($enhanced)
)
SELECT m.mid, m.aid, m.incoming, m.at,
       CASE WHEN m.incoming THEN c."Email" ELSE 'sales@demo.example' END,
       CASE WHEN m.incoming THEN 'sales@demo.example' ELSE c."Email" END,
       CASE WHEN m.incoming THEN '1' ELSE '3' END, m.subject,
       CASE WHEN m.incoming AND m.subject LIKE 'Re:%' THEN
         last_value(CASE WHEN NOT m.incoming THEN m.mid END IGNORE NULLS)
           OVER (PARTITION BY m.who ORDER BY m.at, m.aid ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) END,
       m.deleted, m.at, m.at, m.at
FROM m LEFT JOIN "Contact" c ON c."Id" = m.who
"""

# Meetings with colleagues of the same account: a share of the live meetings gets EventRelation rows for its
# contact (the parent) and 1..3 colleagues, some of whom decline or never answer.
_SHARED_MEETINGS = """
CREATE OR REPLACE TEMP TABLE shp_event_rel AS
WITH e AS (
  SELECT e."Id" AS eid, e."WhoId" AS who, e."SystemModstamp" AS stamp, c.r, c.size, c."AccountId" AS account
  FROM "Event" e JOIN shp_rank c ON c."Id" = e."WhoId"
  WHERE NOT e."IsDeleted" AND NOT COALESCE(e."IsAllDayEvent", false) AND c.size > 1 AND h(e."Id", 'shared') < 350
)
SELECT e.eid, e.who AS rid, true AS parent, 'Accepted' AS status, e.stamp FROM e
UNION ALL
SELECT e.eid, o."Id", false,
       CASE WHEN h(e.eid || o."Id", 'rsvp') < 150 THEN 'Declined' WHEN h(e.eid || o."Id", 'rsvp') < 250 THEN 'New'
            ELSE 'Accepted' END, e.stamp
FROM e, range(1, 4) t(j)
JOIN shp_rank o ON o."AccountId" = e.account AND o.r = (e.r + t.j) % e.size
WHERE t.j <= 1 + h(e.eid, 'guests') % 3 AND t.j < e.size
"""

_NEW_EVENTS = """
INSERT INTO "Event" ("Id", "WhoId", "AccountId", "OwnerId", "Subject", "Type", "EventSubtype", "StartDateTime",
                     "EndDateTime", "ActivityDateTime", "ActivityDate", "DurationInMinutes", "IsAllDayEvent",
                     "IsPrivate", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted")
SELECT sf_id('00U', $new + row_number() OVER (ORDER BY k.who, k.kind, k.at)), k.who, c."AccountId", c."OwnerId",
       k.subject, 'Meeting', 'Event', k.at, k.at + to_minutes(k.minutes), k.at, CAST(k.at AS DATE), k.minutes, false,
       k.private, k.at - INTERVAL 7 DAY, k.at - INTERVAL 7 DAY, k.at - INTERVAL 7 DAY, false
FROM (
  SELECT "Id" AS who, 'cancelled' AS kind, 'Canceled: ' || ['Quarterly business review', 'Check-in call',
         'Project kickoff'][1 + h("Id", 'cancel-topic') % 3] AS subject,
         $as_of::TIMESTAMP - to_days(3 + h("Id", 'cancel-day') % 150) + INTERVAL 14 HOUR AS at, 30 AS minutes,
         false AS private, "CreatedDate" AS created
  FROM shp_rank WHERE h("Id", 'cancel') < 30
  UNION ALL
  SELECT "Id", 'private', 'Private appointment', $as_of::TIMESTAMP - to_days(2 + h("Id", 'private-day') % 120)
         + INTERVAL 11 HOUR, 60, true, "CreatedDate"
  FROM shp_rank WHERE h("Id", 'private') < 20
  UNION ALL
  SELECT "Id", 'webinar', 'Webinar: ' || ['What is new this spring', 'Best practices', 'Year in review'][1 + w % 3],
         $as_of::TIMESTAMP - to_days(5 + (w * 37) % 300) + INTERVAL 16 HOUR, 60, false, "CreatedDate"
  FROM (SELECT "Id", "CreatedDate", seq // $per_webinar AS w FROM shp_rank WHERE seq % $per_webinar = 0)
) k JOIN shp_rank c ON c."Id" = k.who
WHERE k.at > k.created
"""

_WEBINAR_REL = """
INSERT INTO shp_event_rel
SELECT e."Id", c."Id", c."Id" = e."WhoId", CASE WHEN h(e."Id" || c."Id", 'attend') < 600 THEN 'New' ELSE 'Accepted'
       END, e."SystemModstamp"
FROM "Event" e JOIN shp_rank w ON w."Id" = e."WhoId"
JOIN shp_rank c ON c.seq >= w.seq AND c.seq < w.seq + $invitees
WHERE e."Subject" LIKE 'Webinar:%'
"""

_EVENT_REL = """
INSERT INTO "EventRelation" ("Id", "EventId", "RelationId", "IsWhat", "IsInvitee", "IsParent", "IsOrganizer",
                             "Status", "RespondedDate", "IsDeleted", "CreatedDate", "LastModifiedDate",
                             "SystemModstamp")
SELECT sf_id('0RE', row_number() OVER (ORDER BY eid, rid)), eid, rid, false, NOT parent OR h(eid, 'inv') < 500,
       parent, false, status, CASE WHEN status <> 'New' THEN stamp END, false, stamp, stamp, stamp
FROM shp_event_rel
"""

# Calls shared with a colleague of the contact: TaskRelation rows for the contact and the colleague.
_TASK_REL = """
INSERT INTO "TaskRelation" ("Id", "TaskId", "RelationId", "IsWhat", "AccountId", "IsDeleted", "CreatedDate",
                            "LastModifiedDate", "SystemModstamp")
WITH t AS (
  SELECT t."Id" AS tid, t."WhoId" AS who, t."SystemModstamp" AS stamp, c.r, c.size, c."AccountId" AS account
  FROM "Task" t JOIN shp_rank c ON c."Id" = t."WhoId"
  WHERE t."TaskSubtype" = 'Call' AND NOT t."IsDeleted" AND c.size > 1 AND h(t."Id", 'shared-call') < 150
), r AS (
  SELECT tid, who AS rid, account, stamp FROM t
  UNION ALL
  SELECT t.tid, o."Id", t.account, t.stamp FROM t JOIN shp_rank o ON o."AccountId" = t.account
    AND o.r = (t.r + 1) % t.size
)
SELECT sf_id('0RT', row_number() OVER (ORDER BY tid, rid)), tid, rid, false, account, false, stamp, stamp, stamp
FROM r
"""

# Calls logged days after they happened: ActivityDate stays the day of the call.
_BACKDATED = """
UPDATE "Task" SET "CreatedDate" = s.logged, "CompletedDateTime" = s.logged,
                  "LastModifiedDate" = greatest("LastModifiedDate", s.logged),
                  "SystemModstamp" = greatest("SystemModstamp", s.logged)
FROM (SELECT "Id", least(CAST("ActivityDate" AS TIMESTAMP) + to_days(1 + h("Id", 'late') % 14) + INTERVAL 17 HOUR,
                         $as_of::TIMESTAMP - INTERVAL 1 MINUTE) AS logged
      FROM "Task" WHERE "TaskSubtype" = 'Call' AND "IsClosed" AND h("Id", 'backdated') < 60) s
WHERE "Task"."Id" = s."Id"
"""
_NO_ANSWER = """
UPDATE "Task" SET "CallDisposition" = 'No answer', "CallDurationInSeconds" = 0
WHERE "CallDisposition" = 'Left voicemail' AND h("Id", 'no-answer') < 400
"""


def add(crm: LocalCrm, *, seed: int, as_of: dt.date) -> None:
    """Add the shapes to a freshly generated org (inside the generator's transaction)."""
    con = crm.con
    con.execute("SET VARIABLE seed = ?", [str(seed)])
    con.execute(_MACRO)
    params = {"as_of": as_of, "new": _NEW}
    con.execute(_ACCOUNT_RANK)
    con.execute(_NEW_TASKS, params)
    con.execute(_EMAILS, {"as_of": as_of, "enhanced": ENHANCED_EMAIL_DAYS})
    con.execute(_SHARED_MEETINGS)
    con.execute(_NEW_EVENTS, {**params, "per_webinar": CONTACTS_PER_WEBINAR})
    con.execute(_WEBINAR_REL, {"invitees": WEBINAR_INVITEES})
    con.execute(_EVENT_REL)
    con.execute(_TASK_REL)
    con.execute(_BACKDATED, {"as_of": as_of})
    con.execute(_NO_ANSWER)
    for table in ("shp_rank", "shp_event_rel"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
