"""Which Salesforce rows the engine can use, the same on every engine and backend.

A usable contact has a well-formed 18-character Id (its case-safe suffix checks out); a usable activity row has an
Id, a contact WhoId (the one credited) of the right length and a date. Anything else is set aside, counted and named
in the log, and the rest of the org syncs. The statements here are sqlglot trees, so the local CRM and the Salesforce
mirror (DuckDB) and the warehouse source (Spark, through connector.engine.dialect) set aside exactly the same rows.
"""

from __future__ import annotations

from sqlglot import exp

from connector import ids, sql, vocabulary
from connector.config import ActivitiesSection, FieldsSection
from connector.crm import follow_ups
from connector.crm.local import activities as act

SKIPPED_TABLE = "local_skipped"  # object, id, reason: every row the last prepare set aside

# The trust fields as the engine reads them on `crm_contact`, by their [fields] key.
CURRENT = {
    "stage": "cur_stage",
    "stage_since": "cur_since",
    "flags": "cur_flags",
    "next_step": "cur_next",
    "reason": "cur_reason",
    "rules_version": "cur_version",
    "held_until": "cur_held_until",
    "previous_stage": "cur_previous",
}

_TYPES = {"stage_since": "DATE", "held_until": "DATE"}  # a field switched off reads as a typed NULL

_GOOD_CONTACT = """
length("Id") = 18 AND regexp_full_match("Id", '[a-zA-Z0-9]{18}') AND $suffix = right("Id", 3)
"""
_GOOD_ACTIVITY = '(length("Id") = 18 AND length("WhoId") = 18 AND day IS NOT NULL)'
_CONTACTS = 'SELECT * FROM "Contact" WHERE NOT COALESCE("IsDeleted", false) AND ($good)'
_SKIPPED_CONTACTS = """
SELECT 'Contact' AS object, "Id" AS id, 'malformed_id' AS reason FROM "Contact"
WHERE NOT COALESCE("IsDeleted", false) AND NOT ($good)
"""
# The live activities the engine cannot use, with the reason in the Salesforce mirror's words: no WhoId, a Lead's,
# another object's, an Id of the wrong shape, no date, or a contact that is not here. Our own follow-up Tasks are
# not activities at all, so they are not set aside either.
_SKIPPED_ACTIVITIES = """
SELECT $object AS object, a."Id" AS id, CASE
    WHEN NULLIF(a."WhoId", '') IS NULL THEN 'no_who'
    WHEN a."WhoId" LIKE $lead THEN 'lead'
    WHEN a."WhoId" NOT LIKE $contact THEN 'not_a_contact'
    WHEN length(a."Id") <> 18 OR length(a."WhoId") <> 18 THEN 'malformed_id'
    WHEN $day IS NULL THEN 'no_date'
    ELSE 'unknown_contact' END AS reason
FROM $table a LEFT JOIN (SELECT "Id" FROM "Contact" WHERE NOT COALESCE("IsDeleted", false)) c ON c."Id" = a."WhoId"
WHERE NOT COALESCE(a."IsDeleted", false) AND NOT COALESCE(a."Subject" LIKE $mark, false)
  AND (c."Id" IS NULL OR length(a."Id") <> 18 OR length(a."WhoId") <> 18 OR $day IS NULL)
"""
_COUNTS = "SELECT object, count(*), list(id ORDER BY id)[1:10] FROM $skipped GROUP BY object ORDER BY object"


def id_suffix(id15: exp.Expr) -> exp.Expr:
    """The case-safe suffix of a 15-character Id, as `ids.checksum` computes it: per 5-character chunk, one letter
    of the alphabet numbered by which of its characters are upper case."""
    letters: list[exp.Expr] = []
    for chunk in range(3):
        bits: exp.Expr = sql.lit(1)
        for j in range(5):
            char = exp.Substring(this=id15.copy(), start=sql.lit(chunk * 5 + j + 1), length=sql.lit(1))
            upper = exp.Between(this=char, low=sql.lit("A"), high=sql.lit("Z"))
            bits = exp.Add(this=bits, expression=sql.case([(upper, sql.lit(1 << j))], sql.lit(0)))
        letters.append(exp.Substring(this=sql.lit(ids.SUFFIX_ALPHABET), start=bits, length=sql.lit(1)))
    return exp.DPipe(this=exp.DPipe(this=letters[0], expression=letters[1]), expression=letters[2], safe=True)


def good_contact() -> exp.Expr:
    return sql.q(_GOOD_CONTACT, suffix=id_suffix(exp.Left(this=sql.col("Id"), expression=sql.lit(15))))


def good_activity() -> exp.Expr:
    return sql.q(_GOOD_ACTIVITY)


def contacts(fields: FieldsSection) -> exp.Select:
    """`crm_contact`: the live, well-formed contacts with every field, and the trust fields as cur_*."""
    tree = sql.q(_CONTACTS, good=good_contact())
    assert isinstance(tree, exp.Select)
    owned = fields.owned()
    current = [
        sql.alias(sql.col(owned[k]) if k in owned else exp.cast(exp.Null(), _TYPES.get(k, "VARCHAR")), v)
        for k, v in CURRENT.items()
    ]
    return tree.select(*current, append=True, copy=False)


def skipped(policy: ActivitiesSection) -> exp.Expr:
    """Every row set aside: (object, id, reason), for the counts and a run's failures file."""
    parts = [sql.q(_SKIPPED_CONTACTS, good=good_contact())]
    for obj in vocabulary.ACTIVITY_OBJECTS:
        day, _ = act.day_expr(obj, policy)
        parts.append(
            sql.q(
                _SKIPPED_ACTIVITIES,
                object=obj,
                table=sql.table(obj),
                day=day,
                contact=ids.CONTACT + "%",
                lead=ids.LEAD + "%",
                mark=follow_ups.MARK_LIKE,
            )
        )
    return exp.union(*parts, distinct=False)


def skipped_counts() -> exp.Expr:
    """Per object: how many rows were set aside, and the first ten Ids."""
    return sql.q(_COUNTS, skipped=sql.table(SKIPPED_TABLE))
