"""Account names, for the pages people read: the digest, the report and `explain` name each contact with its
account, so two people of one name in one book are told apart.

The local CRM fills the `Account` table from the demo or a Data Export's Account.csv; the Salesforce mirror from
the Contact pull itself (`Account.Name`, a relationship field of the same query: no call of its own). No rule and no
placement reads it (vocabulary.DISPLAY_ONLY): a name is read when a page is made, so a page shows the name the CRM
holds then. A CRM without the table (made by an earlier release, opened read-only) or without a name for an account
reads as names unknown, never as an error.
"""

from __future__ import annotations

import duckdb
from sqlglot import exp

from connector import sql

TABLE = "Account"

_LIVE = 'SELECT "Id", "Name" FROM $t WHERE NOT COALESCE("IsDeleted", false) AND NULLIF(trim("Name"), \'\') IS NOT NULL'
_NONE = 'SELECT CAST(NULL AS VARCHAR) AS "Id", CAST(NULL AS VARCHAR) AS "Name" WHERE false'


def names(con: duckdb.DuckDBPyConnection) -> exp.Expr:
    """A relation ("Id", "Name") of every live account with a name; empty when the CRM has no Account table."""
    present = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [TABLE]
    ).fetchone()
    if present and present[0]:
        return sql.q(_LIVE, t=sql.table(TABLE))
    return sql.q(_NONE)
