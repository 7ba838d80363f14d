"""The local CRM: one DuckDB file holding Salesforce-shaped User, Contact, Task and Event tables, and the
EmailMessage, TaskRelation and EventRelation rows that say who took part and in which direction.

It is the embedded default backend: the engine reads it in place (no copy), and write-back is a set-based
UPDATE of only the changed fields, stamping `LastModifiedDate`/`SystemModstamp` as Salesforce would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import duckdb
from sqlglot import exp

from connector import failpoints, files, ids, sql, vocabulary
from connector.config import ActivitiesSection, EngineSection, FieldsSection
from connector.crm import ApplyResult, FollowUpResult, RuleNeeds
from connector.crm import follow_ups as follow_up
from connector.crm.local import activities as act
from connector.crm.local import quarantine, schema
from connector.engine import session
from connector.engine.relations import PLAN_FIELDS
from connector.errors import ConfigError, CrmError


def _check_path(path: Path) -> None:
    """A folder, a device or a parent that is a file where the database should be is the config's problem (exit 3),
    said before DuckDB is asked to open it. A file that is not a database stays an unreadable CRM (exit 6)."""
    problem = files.database_file_problem(path, content=False)
    if problem is not None:
        raise ConfigError(f"[local] database (or [salesforce] mirror): {problem}")


class LocalCrm:
    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self.con = con
        self.path = path
        self.api_calls = 0
        self.skipped: dict[str, int] = {}
        self.skipped_samples: dict[str, list[str]] = {}
        self._policy = ActivitiesSection()  # the date policy `expose` last used
        con.execute("SET enable_progress_bar = false")  # our own output is the summary, not DuckDB's bar
        for stmt in ids.sql_macros():
            con.execute(stmt)

    @classmethod
    def create(cls, path: Path | None, *, replace: bool = False) -> LocalCrm:
        """A new, empty local CRM (in memory when `path` is None), with the default trust picklists."""
        if path is not None:
            _check_path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            if replace:
                for p in (path, path.with_name(path.name + ".wal")):
                    p.unlink(missing_ok=True)
        con = duckdb.connect(str(path) if path else ":memory:")
        for stmt in schema.ddl():
            con.execute(stmt)
        crm = cls(con, path)
        if not crm.picklist_values():
            for field, values in schema.DEFAULT_PICKLISTS.items():
                crm.set_picklist(field, values)
        return crm

    @classmethod
    def open(cls, path: Path) -> LocalCrm:
        _check_path(path)
        if not path.exists():
            raise ConfigError(
                f"{path}: no local CRM here yet. Create one with `trust-ladder demo` "
                "or load a Salesforce Data Export with `trust-ladder import DIR`."
            )
        try:
            con = duckdb.connect(str(path))
        except duckdb.Error as exc:
            # Locked by another program, or unreadable: the CRM is unreachable, not misconfigured.
            if "lock" in str(exc).lower():
                raise CrmError(
                    f"{path}: the local CRM is in use by another process (a sync running?); "
                    f"try again when it has finished ({exc})"
                ) from None
            raise CrmError(f"{path}: cannot open the local CRM: {exc}") from None
        _add_new_columns(con)
        return cls(con, path)

    def close(self) -> None:
        self.con.close()

    def set_picklist(self, field: str, values: list[str]) -> None:
        self.con.execute('DELETE FROM "FieldPicklist" WHERE "Field" = ?', [field])
        self.con.executemany(
            'INSERT INTO "FieldPicklist" VALUES (?, ?, ?)', [(field, v, i) for i, v in enumerate(values)]
        )

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute('INSERT OR REPLACE INTO "_TrustLadderMeta" VALUES (?, ?)', [key, value])

    def meta(self, key: str) -> str | None:
        try:
            row = self.con.execute('SELECT "Value" FROM "_TrustLadderMeta" WHERE "Key" = ?', [key]).fetchone()
        except duckdb.CatalogException:
            return None
        return str(row[0]) if row else None

    def picklist_values(self) -> dict[str, list[str]]:
        rows = self.con.execute('SELECT "Field", "Value" FROM "FieldPicklist" ORDER BY "Field", "SortOrder"').fetchall()
        out: dict[str, list[str]] = {}
        for field, value in rows:
            out.setdefault(field, []).append(value)
        return out

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(f'DESCRIBE "{table}"').fetchall()]

    def counts(self) -> dict[str, int]:
        return {
            t: int(self.con.execute(f'SELECT count(*) FROM "{t}" WHERE NOT COALESCE("IsDeleted", false)').fetchone()[0])  # type: ignore[index]
            if t != "User"
            else int(self.con.execute('SELECT count(*) FROM "User"').fetchone()[0])  # type: ignore[index]
            for t in schema.TABLES
        }

    def tune(self, engine: EngineSection, resolve: Callable[[Path], Path]) -> None:
        session.tune(self.con, engine, resolve)

    # -- the engine's view of this CRM -------------------------------------------------------------------

    def usable_fields(self, fields: FieldsSection) -> FieldsSection:
        have = set(self.columns("Contact"))
        return fields.without([k for k in fields.OPTIONAL if getattr(fields, k) and getattr(fields, k) not in have])

    def check_fields(self, fields: FieldsSection) -> None:
        have = set(self.columns("Contact"))
        missing = [f for f in fields.required().values() if f not in have]
        if missing:
            raise ConfigError(
                f"{self.path}: the local Contact table has no field {', '.join(missing)}; "
                "the [fields] section of the config names fields this CRM does not have"
            )

    def prepare_write(self, fields: FieldsSection) -> None:
        """Ready to write a plan computed from elsewhere (a warehouse copy) without `prepare`."""
        self.check_fields(fields)

    def prepare(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        """Expose `crm_contact` and `crm_activity`, the two relations the engine reads: contacts in place, and
        one activity row per contact who took part (connector.crm.local.activities), under the date policy."""
        self.pull(fields, rules, activities)
        self.expose(fields, activities)

    def pull(
        self, fields: FieldsSection, rules: RuleNeeds | None = None, activities: ActivitiesSection | None = None
    ) -> None:
        """Nothing to bring up to date: the engine reads this CRM in place. Only its fields are checked."""
        del rules, activities
        self.check_fields(fields)

    def signature(self) -> str:
        """A digest of everything the engine reads here, cheap enough for every run: per table its row count and a
        hash of every row's Id and `SystemModstamp` (0.5 CPU-s at a million contacts). Every write through this
        tool, the demo, `import` and Salesforce stamps `SystemModstamp`, as Salesforce does, so any change of the
        data changes the digest, whatever time it is stamped with; a table without the stamp (users, picklists:
        small) is hashed whole. Accounts are left out (vocabulary.DISPLAY_ONLY): a renamed account changes no
        placement, and the pages that show its name read it when they are made."""
        parts = []
        present = {str(r[0]) for r in self.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        for table in (*schema.TABLES, "FieldPicklist"):
            if table in vocabulary.DISPLAY_ONLY:  # names for people, never read by a placement
                continue
            if table not in present:  # a CRM made by an earlier release: a table added since holds nothing
                parts.append(f"{table}:absent")
                continue
            have = set(self.columns(table))
            if "SystemModstamp" in have:  # a row re-stamped with any other time, even an earlier one, is seen
                query = f'SELECT count(*), max("SystemModstamp"), sum(hash("Id", "SystemModstamp")) FROM "{table}"'
            else:
                columns = ", ".join(f'"{c}"' for c in sorted(have))
                query = f'SELECT count(*), sum(hash({columns})) FROM "{table}"'
            parts.append(f"{table}:{self.con.execute(query).fetchone()}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def expose(self, fields: FieldsSection, activities: ActivitiesSection | None = None) -> None:
        """`crm_contact` and `crm_activity` over the data as it is, and the rows the engine cannot use set aside."""
        policy = activities or ActivitiesSection()
        sql.run(self.con, _temp_view("crm_contact", quarantine.contacts(self.usable_fields(fields))))
        unknown = act.build_facts(self.con)
        self._quarantine(policy, unknown)
        self._policy = policy
        sql.run(self.con, _temp_view("crm_activity", self.activities_of(None)))

    def activities_of(self, only: str | None) -> exp.Expr:
        """`crm_activity`'s rows (as the last `expose` defined them); with `only`, a table of contact Ids, at least
        those contacts' rows, picked from the activity tables before anything is joined to them."""
        good = quarantine.good_activity()
        parts = [
            sql.q("SELECT * FROM ($rows) WHERE $good", rows=act.rows(obj, self._policy, only=only), good=good)
            for obj in vocabulary.ACTIVITY_OBJECTS
        ]
        return exp.union(*parts, distinct=False)

    def _quarantine(self, policy: ActivitiesSection, unknown: dict[str, tuple[int, list[str]]]) -> None:
        """Count, and name a few of, the rows the engine cannot use (malformed, or not a contact's); the rest of the
        org is synced without them. All of them are kept for `skipped_rows` (a run's failures file). Relations to
        contacts the CRM does not hold credit nobody, and are counted here too."""
        sql.run(self.con, sql.create_temp(quarantine.SKIPPED_TABLE, quarantine.skipped(policy)))
        self.skipped, self.skipped_samples = {}, {}
        for table, count, sample in sql.run(self.con, quarantine.skipped_counts()).fetchall():
            self.skipped[str(table)] = int(count)
            self.skipped_samples[str(table)] = [str(i) for i in sample]
        for obj, (count, sample) in unknown.items():
            self.skipped[obj], self.skipped_samples[obj] = count, sample

    def examples(self, fields: FieldsSection) -> list[tuple[str, str, str, str]]:
        """One contact on each rung the CRM shows, a flagged one where there is one, lowest Id first: (Id, name,
        rung, flags), rungs in the picklist's order. Somewhere for a newcomer to start `explain`."""
        order = {v: i for i, v in enumerate(self.picklist_values().get(fields.stage, []))}
        rows = sql.run(
            self.con,
            sql.q(
                'SELECT "Id", trim(concat_ws(\' \', "FirstName", "LastName")), $stage, COALESCE($flags, \'\') '
                'FROM "Contact" WHERE NOT COALESCE("IsDeleted", false) AND $stage IS NOT NULL '
                'QUALIFY row_number() OVER (PARTITION BY $stage ORDER BY $flags IS NULL, "Id") = 1',
                stage=sql.col(fields.stage),
                flags=sql.col(fields.flags),
            ),
        ).fetchall()
        found = [(str(i), str(n), str(s), str(f)) for i, n, s, f in rows]
        return sorted(found, key=lambda r: (order.get(r[2], len(order)), r[2]))

    def skipped_rows(self) -> list[tuple[str, str, str]]:
        """Every row the last `prepare` set aside: (object, Id, reason), for a run's failures file."""
        return [
            (str(o), str(i), str(r))
            for o, i, r in sql.run(
                self.con, sql.q("SELECT object, id, reason FROM local_skipped ORDER BY object, reason, id")
            ).fetchall()
        ]

    def apply(self, plan_table: str, fields: FieldsSection, rules_version: str) -> ApplyResult:
        """Write only the changed fields of the planned contacts, in one transaction."""
        owned = self.usable_fields(fields).owned()
        sets = [
            f'"{owned[k]}" = CASE WHEN p.ch_{k} THEN p.{new} ELSE "Contact"."{owned[k]}" END'
            for k, (new, _) in PLAN_FIELDS.items()
            if k in owned
        ]
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.con.execute("BEGIN TRANSACTION")
        try:
            self.con.execute(
                f'UPDATE "Contact" SET {", ".join(sets)}, "{owned["rules_version"]}" = ?, '
                f'"LastModifiedDate" = ?, "SystemModstamp" = ? FROM {plan_table} p WHERE "Contact"."Id" = p.cid',
                [rules_version, now, now],
            )
            changed = int(self.con.execute(f"SELECT count(*) FROM {plan_table}").fetchone()[0])  # type: ignore[index]
            failpoints.hit("mid_write")
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise
        return ApplyResult(changed=changed)

    # -- follow-up tasks (connector.follow_up) -----------------------------------------------------------------

    def sync_follow_ups(self, desired_table: str) -> FollowUpResult:
        """Create, update, close and release the marked follow-up Tasks, in one transaction."""
        planned = follow_up.diff(self.con, desired_table)
        if planned.empty:
            return FollowUpResult()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self.con.execute("BEGIN TRANSACTION")
        try:
            if planned.create:
                self._create_follow_ups(planned.create, now)
            self.con.execute(
                f'UPDATE "Task" SET "Subject" = CASE WHEN u.ch_subject THEN u.subject ELSE "Task"."Subject" END, '
                '"OwnerId" = CASE WHEN u.ch_owner THEN u.owner_id ELSE "Task"."OwnerId" END, '
                '"ActivityDate" = CASE WHEN u.ch_due THEN u.due_date ELSE "Task"."ActivityDate" END, '
                f'"LastModifiedDate" = ?, "SystemModstamp" = ? FROM {follow_up.UPDATE_TABLE} u '
                'WHERE "Task"."Id" = u.task_id',
                [now, now],
            )
            self.con.execute(
                f'UPDATE "Task" SET "Subject" = c.subject, "Status" = \'Completed\', "IsClosed" = true, '
                f'"CompletedDateTime" = ?, "LastModifiedDate" = ?, "SystemModstamp" = ? FROM {follow_up.CLOSE_TABLE} c '
                'WHERE "Task"."Id" = c.task_id',
                [now, now, now],
            )
            self.con.execute(
                f'UPDATE "Task" SET "Subject" = r.subject, "LastModifiedDate" = ?, "SystemModstamp" = ? '
                f'FROM {follow_up.RELEASE_TABLE} r WHERE "Task"."Id" = r.task_id',
                [now, now],
            )
            self.con.execute("COMMIT")
        except duckdb.Error:
            self.con.execute("ROLLBACK")
            raise
        return FollowUpResult(
            created=planned.create, updated=planned.update, closed=planned.close, released=planned.release
        )

    def _create_follow_ups(self, count: int, now: dt.datetime) -> None:
        """Insert the planned new tasks, with Ids `00TTL…` numbered on from a counter kept in the CRM file."""
        seq = int(self.meta(_TASK_SEQ) or 0)
        new_id = "'00TTL' || substr(sf_id15('', n), 3)"
        while True:  # an imported Task that happens to have one of these Ids moves the numbering on
            clash = self.con.execute(
                f'SELECT count(*) FROM "Task" WHERE "Id" IN (SELECT {new_id} || sf_suffix({new_id}) '
                f"FROM range(?, ?) r(n))",
                [seq + 1, seq + count + 1],
            ).fetchone()
            if not clash or not clash[0]:
                break
            seq += count + 1_000_000
        self.con.execute(
            'INSERT INTO "Task" ("Id", "WhoId", "OwnerId", "Subject", "ActivityDate", "Status", "Priority", '
            '"TaskSubtype", "IsClosed", "CreatedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted") '
            f"SELECT {new_id} || sf_suffix({new_id}), cid, owner_id, subject, due_date, 'Not Started', 'Normal', "
            "'Task', false, ?, ?, ?, false FROM (SELECT *, ? + row_number() OVER (ORDER BY cid, flag_id) AS n "
            f"FROM {follow_up.CREATE_TABLE})",
            [now, now, now, seq],
        )
        self.set_meta(_TASK_SEQ, str(seq + count))


_TASK_SEQ = "follow_up.task_seq"  # how many follow-up Task Ids this CRM file has handed out


def _add_new_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A CRM made by an earlier release lacks the columns added since (the notes, Description; the contact's bounce
    fields): added empty, so the rules that read them find nothing there rather than failing on a missing column.
    The accounts' table is made empty too, for an import or a Salesforce pull to fill (the pages read a CRM without
    it as knowing no account names)."""
    present = {str(r[0]) for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    for table in vocabulary.DISPLAY_ONLY:
        if table not in present:
            con.execute(schema.create(table))
    added = {"Contact": set(vocabulary.CONTACT_BOUNCE_FIELDS)}  # not the optional trust fields: a CRM may lack them
    for table in ("Contact", "Task", "Event"):
        have = {r[0] for r in con.execute(f'DESCRIBE "{table}"').fetchall()}
        for column, typ in schema.TABLES[table]:
            if column not in have and (table not in added or column in added[table]):
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {typ.split()[0]}')


def _owned(fields: FieldsSection) -> dict[str, str]:
    return fields.model_dump()


def _temp_view(name: str, body: exp.Expr) -> exp.Expr:
    return sql.create_temp(name, body, kind="VIEW")
