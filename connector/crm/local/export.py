"""Import of a Salesforce Data Export (Setup > Data Export, weekly or monthly) into the local CRM.

The export is a folder of one CSV file per object, named after the object (`Contact.csv`, `Task.csv`,
`Event.csv`, `User.csv`, `Account.csv`, ...). Each file is UTF-8 (when that encoding was chosen for the export), has a
header row of API field names, and quotes its values; text fields may hold commas, doubled quotes and line breaks
inside the quotes, so one record can span several physical lines.

How the import works, and why:
- Python's `csv` module streams each file record by record; only the columns the local CRM knows are kept, and
  every 50,000 records the raw strings go to DuckDB as one batch. Python's memory stays bounded by the batch,
  not by the file, which may be several GB.
- Type conversion and validation (Salesforce Ids and their 15 -> 18 character form, booleans, dates,
  date-times with their UTC offset, whole numbers) happen in DuckDB, set-based, over the batch, into a typed
  staging table. A record with a value that cannot be used is skipped and reported with its file, the
  physical line it starts on, and its Id.
- Duplicated Ids: the last record in the file wins; each superseded record is reported.
- The CRM tables change in one transaction, after every file has been read: a fatal error (a file that is not
  UTF-8, broken CSV quoting, a file without an Id column, a failed write) leaves the local CRM as it was.
- A table whose file the folder does not hold (no `Task.csv`, no `User.csv`: an export made without that
  object) is kept as it is, never emptied: the report says how many of its records were kept, so that an
  export of Contacts alone refreshes the contacts without losing a year of activities in silence.
"""

from __future__ import annotations

import contextlib
import csv
import operator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from connector import progress, vocabulary
from connector.crm.local import export_convert, schema
from connector.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from connector.crm.local.store import LocalCrm

BATCH_ROWS = 50_000
# Problems listed per file; beyond this they are only counted (ImportReport.problems_not_listed), so a file
# whose every record is broken cannot flood memory or the terminal.
MAX_PROBLEMS_PER_FILE = 1_000

# Objects in import order (each from <Object>.csv), and whether the export must contain the file.
# EmailMessage.csv, TaskRelation.csv and EventRelation.csv are in an export when the org has Enhanced Email and
# Shared Activities and they were ticked: they say which way an email went and who else took part.
OBJECTS: list[tuple[str, bool]] = [
    ("User", False),
    ("Account", False),  # only its names are kept, for the digest; without it contacts show their AccountId
    ("Contact", True),
    ("Task", False),
    ("Event", False),
    ("EmailMessage", False),
    ("TaskRelation", False),
    ("EventRelation", False),
    ("Opportunity", False),
    ("OpportunityContactRole", False),
]

# Long text areas can be 131,072 characters; the csv module's default limit is exactly that, which leaves no
# room for a field at the limit plus anything Salesforce adds. A generous limit costs nothing.
_FIELD_SIZE_LIMIT = 16 * 1024 * 1024


_BATCH = "_export_import_batch"


@dataclass
class RowProblem:
    """One record of the export that was skipped (or superseded), located for the admin."""

    file: str
    line: int
    record_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.record_id}: {self.message}" if self.record_id else f"{where}: {self.message}"


@dataclass
class ImportReport:
    """What an import did, per object name ("Contact", "Task", ...).

    `imported` counts the records now in the local CRM from each file; `skipped` the records of the file that
    were not imported (unusable values, superseded duplicates); `problems` lists why, by file and line;
    `ignored_columns` names the columns of each file the local CRM does not keep (not an error: a real export
    has dozens of them); `problems_not_listed` counts problems beyond MAX_PROBLEMS_PER_FILE in a file.
    """

    imported: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    problems_not_listed: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)  # tables with no file in the folder: their records kept


def import_export(
    crm: LocalCrm, folder: Path, *, replace: bool = True, steps: progress.Steps | None = None
) -> ImportReport:
    """Load the Data Export in `folder` into `crm`.

    With `replace` (the default) each table the folder has a file for is emptied first, so it holds exactly the
    export; a table with no file is kept, and counted in `kept`; the picklist definitions are kept. Without it,
    records are upserted by Id and columns absent from a file keep their current values.

    Two phases: every file is first read, checked and converted into a temporary staging table of this
    connection (the CRM tables are not touched, and no transaction holds the staged rows in memory); then one
    transaction empties (with `replace`) and fills the CRM tables from the staging tables. `steps` shows each
    file read, then the write, on a terminal.
    """
    files = _locate_files(folder)
    steps = steps or progress.quiet()
    steps.add(len(files) + 1)
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_SIZE_LIMIT))
    con = crm.con
    report = ImportReport()
    staged: dict[str, list[str]] = {}
    try:
        export_convert.create_macros(con)
        for obj, _required in OBJECTS:
            path = files.get(obj)
            if path is not None:
                with steps.step(f"reading {path.name}"):
                    staged[obj] = _stage_file(con, obj, path, report)
        _refuse_no_contacts(con, report)
        with steps.step("writing the local CRM"):
            _replace(con, staged, report, replace=replace)
    finally:
        for obj, _required in OBJECTS:
            with contextlib.suppress(duckdb.Error):  # never hide the error that brought us here
                con.execute(f'DROP TABLE IF EXISTS "{_stage(obj)}"')
    return report


def _replace(con: Any, staged: dict[str, list[str]], report: ImportReport, *, replace: bool) -> None:
    """One transaction: each table the export has a file for is emptied (with `replace`) and filled from its
    staging table; a table with no file is kept and counted."""
    con.begin()
    try:
        for table in schema.TABLES:
            if table not in staged:
                row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                if row and row[0]:
                    report.kept[table] = int(row[0])
            elif replace:
                con.execute(f'DELETE FROM "{table}"')
        for obj, names in staged.items():
            report.imported[obj] = _insert(con, obj, names, replace=replace)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _refuse_no_contacts(con: Any, report: ImportReport) -> None:
    """An export whose every contact was rejected would empty the local CRM: refuse it (exit 5) before anything
    is replaced, naming the first problems."""
    if not report.skipped.get("Contact"):
        return
    row = con.execute(f'SELECT count(*) FROM "{_stage("Contact")}" WHERE _err IS NULL').fetchone()
    if row and row[0]:
        return
    shown = [str(p) for p in report.problems if p.file.lower() == "contact.csv"][:10]
    raise DataError(
        f"every record of Contact.csv was rejected ({report.skipped['Contact']:,}); nothing was "
        "imported and the local CRM is unchanged. First problems:\n  " + "\n  ".join(shown)
    )


def _locate_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder. Unzip the Salesforce Data Export and point at the folder.")
    by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    found: dict[str, Path] = {}
    for obj, required in OBJECTS:
        name = f"{obj}.csv"
        path = folder / name if (folder / name).is_file() else by_lower.get(name.lower())
        if path is not None:
            found[obj] = path
        elif required:
            raise DataError(
                f"{folder}: no {name} here. A Salesforce Data Export folder holds one CSV per object; "
                f"include Contacts (and Tasks and Events) in the export, unzip it, and import that folder."
            )
    return found


# --- reading ------------------------------------------------------------------------------------------------


@dataclass
class _Columns:
    """Which CSV columns feed which table columns."""

    names: list[str]  # table columns present in the file, in file order
    indexes: list[int]  # their positions in a CSV record
    id_index: int
    width: int  # fields per record, from the header
    ignored: list[str]


def _map_header(obj: str, file: str, header: list[str]) -> _Columns:
    known = {c.lower(): c for c in schema.column_names(obj)}
    names: list[str] = []
    indexes: list[int] = []
    ignored: list[str] = []
    for i, raw in enumerate(header):
        col = known.get(raw.strip().lower())
        if col is None or col in names:
            if raw.strip():
                ignored.append(raw)
        else:
            names.append(col)
            indexes.append(i)
    if "Id" not in names:
        raise DataError(f"{file}: the header row has no Id column (header: {', '.join(header[:8])} ...)")
    return _Columns(names, indexes, indexes[names.index("Id")], len(header), ignored)


def _records(reader: Any, file: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line the record starts on, fields); blank lines are dropped. Header is line 1."""
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            msg = f"{file}:{start}: broken CSV quoting ({exc}); the file is damaged or truncated"
            raise DataError(msg) from None
        except UnicodeDecodeError:
            raise DataError(
                f"{file}: not UTF-8 (near line {start}). Run the Data Export with the UTF-8 encoding "
                "and import the new files."
            ) from None
        line, start = start, reader.line_num + 1
        if row:
            yield line, row


def _stage_file(con: Any, obj: str, path: Path, report: ImportReport) -> list[str]:
    """Read, check and convert one file into its staging table; return the table columns the file has."""
    file = path.name
    stage = _stage(obj)
    problems: list[RowProblem] = []  # records whose field count does not match the header
    shape_count = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            header = next(_records(reader, file), None)
            if header is None:
                msg = f"{file}: empty file; a Data Export CSV starts with a header row of field names"
                raise DataError(msg)
            cols = _map_header(obj, file, header[1])
            report.ignored_columns[obj] = cols.ignored
            pick = _picker(cols.indexes)
            _create_stage(con, obj, cols.names)
            lines: list[int] = []
            rows: list[Sequence[str]] = []
            for line, row in _records(reader, file):
                if len(row) != cols.width:
                    shape_count += 1
                    if shape_count <= MAX_PROBLEMS_PER_FILE:
                        rid = row[cols.id_index] if cols.id_index < len(row) and row[cols.id_index] else None
                        msg = f"has {len(row)} fields, the header has {cols.width}"
                        problems.append(RowProblem(file, line, rid, msg))
                    continue
                lines.append(line)
                rows.append(pick(row))
                if len(rows) >= BATCH_ROWS:
                    _load_batch(con, obj, cols.names, lines, rows)
                    lines, rows = [], []
            if rows:
                _load_batch(con, obj, cols.names, lines, rows)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    skipped = shape_count + _bad_rows(con, stage, file, problems) + _duplicates(con, stage, file, problems)
    report.skipped[obj] = skipped
    problems.sort(key=lambda p: p.line)
    if skipped > MAX_PROBLEMS_PER_FILE:
        report.problems_not_listed[obj] = skipped - MAX_PROBLEMS_PER_FILE
    report.problems.extend(problems[:MAX_PROBLEMS_PER_FILE])
    return cols.names


def _stage(obj: str) -> str:
    return f"_export_import_{obj}"


def _picker(indexes: list[int]) -> Callable[[list[str]], Sequence[str]]:
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    return operator.itemgetter(*indexes)


def _create_stage(con: Any, obj: str, names: list[str]) -> None:
    cols = ", ".join(f'"{c}" {schema.column_type(obj, c)}' for c in names)
    con.execute(f'CREATE OR REPLACE TEMP TABLE "{_stage(obj)}" (_line BIGINT, {cols}, _raw_id VARCHAR, _err VARCHAR)')


def _load_batch(con: Any, obj: str, names: list[str], lines: list[int], rows: list[Sequence[str]]) -> None:
    data: dict[str, Any] = {"_line": np.asarray(lines, dtype=np.int64)}
    for i, column in enumerate(zip(*rows, strict=True)):
        data[f"c{i}"] = np.asarray(column, dtype=object)
    convs = [export_convert.convert(obj, col, f'"c{i}"', f'"v{i}"') for i, col in enumerate(names)]
    raws = ", ".join(f'"c{i}"' for i in range(len(names)))
    values = ", ".join(f'{conv} AS "v{i}"' for i, (conv, _) in enumerate(convs))
    typed = ", ".join(f'"v{i}"' for i in range(len(names)))
    errors = ", ".join(err for _, err in convs)
    id_raw = f'"c{names.index("Id")}"'
    con.register(_BATCH, data)
    try:
        con.execute(
            f'INSERT INTO "{_stage(obj)}" SELECT _line, {typed}, {id_raw}, '
            f"NULLIF(concat_ws('; ', {errors}), '') "
            f'FROM (SELECT _line, {raws}, {values} FROM "{_BATCH}")'
        )
    finally:
        con.unregister(_BATCH)


def _bad_rows(con: Any, stage: str, file: str, problems: list[RowProblem]) -> int:
    """Append the records with unusable values (up to the listing cap); return how many there are."""
    count = int(con.execute(f'SELECT count(*) FROM "{stage}" WHERE _err IS NOT NULL').fetchone()[0])
    rows = con.execute(
        f"""SELECT _line, COALESCE(_imp_id(_raw_id), NULLIF(_raw_id, '')), _err FROM "{stage}"
            WHERE _err IS NOT NULL ORDER BY _line LIMIT {MAX_PROBLEMS_PER_FILE}"""
    ).fetchall()
    problems.extend(RowProblem(file, int(line), rid, err) for line, rid, err in rows)
    return count


def _duplicates(con: Any, stage: str, file: str, problems: list[RowProblem]) -> int:
    """Records whose Id appears again later in the file: the later one wins."""
    superseded = f"""SELECT _line, "Id", max(_line) OVER (PARTITION BY "Id") AS winner FROM "{stage}"
                     WHERE _err IS NULL QUALIFY _line < winner"""
    count = int(con.execute(f"SELECT count(*) FROM ({superseded})").fetchone()[0])
    rows = con.execute(f"{superseded} ORDER BY _line LIMIT {MAX_PROBLEMS_PER_FILE}").fetchall()
    problems.extend(
        RowProblem(file, int(line), rid, f"duplicate Id: the record on line {winner} replaces this one")
        for line, rid, winner in rows
    )
    return count


def _insert(con: Any, obj: str, names: list[str], *, replace: bool) -> int:
    cols = ", ".join(f'"{c}"' for c in names)
    # Notes are kept to the length rules read (vocabulary.DESCRIPTION_CAP), as every adapter keeps them.
    picked = ", ".join(
        f'left("{c}", {vocabulary.DESCRIPTION_CAP}) AS "{c}"' if c == "Description" else f'"{c}"' for c in names
    )
    sql = (
        f'INSERT INTO "{obj}" ({cols}) SELECT {picked} FROM "{_stage(obj)}" WHERE _err IS NULL '
        'QUALIFY row_number() OVER (PARTITION BY "Id" ORDER BY _line DESC) = 1'
    )
    if not replace:
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in names if c != "Id")
        sql += f' ON CONFLICT ("Id") DO UPDATE SET {updates}' if updates else ' ON CONFLICT ("Id") DO NOTHING'
    return int(con.execute(sql).fetchone()[0])


__all__ = ["ImportReport", "RowProblem", "import_export"]
