"""Import of a Salesforce Data Export folder into the local CRM.

The fixtures are written in the shape Salesforce's Data Export service produces. What that shape is, and where
it comes from:
- one CSV per object, named after it (Contact.csv, Task.csv, ...), delivered in .zip archives of about 512 MB,
  the encoding chosen by the admin, and an option "Replace carriage returns with spaces" that is off by
  default, so text fields can hold line breaks: Salesforce Help, "Export Backup Data from Salesforce"
  (mirrored as "Backing Up Data from Salesforce", http://help.incaclinic.com/doku.php/backup_data) and
  "Understanding and Using Data Export" (https://practifisuccess.zendesk.com/hc/en-us/articles/11432727041807);
- header row of API field names, fields containing commas, quotes or line breaks wrapped in double quotes,
  quotes doubled: Bulk API 2.0 Developer Guide, "Prepare CSV Files" and "Valid CSV Record Rows"
  (https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/datafiles_csv_valid_record_rows.htm);
- every value double-quoted, records ended by LF, line breaks inside text areas as CRLF: observed for
  Salesforce's CSV exports in "Salesforce CSV Format for Report Exports Is Not IETF RFC 4180-compliant"
  (http://frombelvideres4thfloor.blogspot.com/2010/08/salesforce-csv-format-for-report.html);
- dates as YYYY-MM-DD and date-times as YYYY-MM-DDThh:mm:ss.sssZ (UTC): Salesforce Help, "Format the 'Date'
  and 'Date Time' data in a CSV file For Salesforce Data Loader" (help.salesforce.com article 000385167).
Not confirmed by any page found, so the importer accepts both forms: checkboxes as "1"/"0" versus
"true"/"false", 15- versus 18-character Ids, and a UTF-8 byte order mark.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from connector import ids
from connector.config import FieldsSection
from connector.crm.local import export
from connector.crm.local.export import import_export
from connector.crm.local.store import LocalCrm
from connector.errors import DataError

C1, C2, C3 = (ids.make(ids.CONTACT, n) for n in (1, 2, 3))
T1, T2, T3, T4 = (ids.make(ids.TASK, n) for n in (1, 2, 3, 4))
E1 = ids.make(ids.EVENT, 1)
U1 = ids.make(ids.USER, 1)
A1 = ids.make(ids.ACCOUNT, 1)
LEAD = ids.make(ids.LEAD, 1)

# Real exports carry many more columns than the local CRM keeps; a few of them stand in here.
CONTACT_HEADER = [
    "Id",
    "IsDeleted",
    "MasterRecordId",
    "AccountId",
    "LastName",
    "FirstName",
    "Salutation",
    "Name",
    "MailingStreet",
    "Email",
    "Title",
    "OwnerId",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "SystemModstamp",
    "Trust_Stage__c",
    "Trust_Stage_Since__c",
    "Trust_Flags__c",
]
TASK_HEADER = [
    "Id",
    "WhoId",
    "WhatId",
    "WhoCount",
    "Subject",
    "ActivityDate",
    "Status",
    "Priority",
    "OwnerId",
    "Description",
    "Type",
    "IsDeleted",
    "AccountId",
    "IsClosed",
    "CreatedDate",
    "SystemModstamp",
    "CallDurationInSeconds",
    "CallType",
    "TaskSubtype",
    "CompletedDateTime",
]


def contact(cid: str, last: str = "Lovelace", **kw: str) -> dict[str, str]:
    row = {
        "Id": cid,
        "IsDeleted": "0",
        "AccountId": A1,
        "LastName": last,
        "FirstName": "Ada",
        "Salutation": "Ms.",
        "Name": f"Ada {last}",
        "MailingStreet": "1 Main St\r\nSuite 2",
        "Email": "ada@example.com",
        "OwnerId": U1,
        "CreatedDate": "2024-01-15T10:30:00.000Z",
        "CreatedById": U1,
        "LastModifiedDate": "2024-02-01T08:00:00.000Z",
        "SystemModstamp": "2024-02-01T08:00:00.000Z",
    }
    return row | kw


def task(tid: str, who: str = C1, subject: str = "Call", **kw: str) -> dict[str, str]:
    row = {
        "Id": tid,
        "WhoId": who,
        "WhoCount": "1" if who else "0",
        "Subject": subject,
        "ActivityDate": "2024-03-01",
        "Status": "Completed",
        "Priority": "Normal",
        "OwnerId": U1,
        "Type": "Call",
        "IsDeleted": "0",
        "AccountId": A1,
        "IsClosed": "1",
        "CreatedDate": "2024-03-01T09:00:00.000Z",
        "SystemModstamp": "2024-03-01T09:00:00.000Z",
        "CallDurationInSeconds": "120",
        "CallType": "Inbound",
        "TaskSubtype": "Call",
        "CompletedDateTime": "2024-03-01T09:05:00.000Z",
    }
    return row | kw


def write(
    path: Path, header: Sequence[str], rows: Sequence[dict[str, str]], *, bom: bool = False, lineterminator: str = "\n"
) -> Path:
    """A CSV as the Data Export writes it: header of API names, every value quoted."""
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator=lineterminator)
        w.writerow(header)
        for r in rows:
            w.writerow([r.get(h, "") for h in header])
    return path


@pytest.fixture
def crm() -> Iterator[LocalCrm]:
    c = LocalCrm.create(None)
    yield c
    c.close()


def one(crm: LocalCrm, sql: str, *params: object) -> tuple[object, ...]:
    row = crm.con.execute(sql, list(params)).fetchone()
    assert row is not None, sql
    return tuple(row)


# --- the happy path -------------------------------------------------------------------------------------------


def test_a_data_export_folder_lands_in_the_local_crm(tmp_path: Path, crm: LocalCrm) -> None:
    write(
        tmp_path / "User.csv",
        ["Id", "Username", "Name", "Email", "IsActive"],
        [{"Id": U1, "Username": "ada@x", "Name": "Ada Admin", "Email": "a@x", "IsActive": "1"}],
    )
    write(
        tmp_path / "Contact.csv",
        CONTACT_HEADER,
        [
            contact(
                C1,
                Trust_Stage__c="Friend",
                Trust_Stage_Since__c="2024-02-01",
                Trust_Flags__c="Missing listening;Missing thank-you",
            ),
            contact(C2, "Hopper"),
        ],
    )
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1), task(T2, C2, "Email", TaskSubtype="Email")])
    write(
        tmp_path / "Event.csv",
        [
            "Id",
            "WhoId",
            "Subject",
            "StartDateTime",
            "EndDateTime",
            "ActivityDate",
            "DurationInMinutes",
            "IsAllDayEvent",
            "IsDeleted",
            "IsPrivate",
        ],
        [
            {
                "Id": E1,
                "WhoId": C1,
                "Subject": "QBR",
                "StartDateTime": "2024-04-02T14:00:00.000Z",
                "EndDateTime": "2024-04-02T15:00:00.000Z",
                "ActivityDate": "2024-04-02",
                "DurationInMinutes": "60",
                "IsAllDayEvent": "0",
                "IsDeleted": "0",
                "IsPrivate": "0",
            }
        ],
    )

    report = import_export(crm, tmp_path)

    assert report.imported == {"User": 1, "Contact": 2, "Task": 2, "Event": 1}
    assert report.skipped == {"User": 0, "Contact": 0, "Task": 0, "Event": 0}
    assert report.problems == []
    assert one(crm, 'SELECT "Name", "IsActive" FROM "User"') == ("Ada Admin", True)
    assert one(
        crm,
        'SELECT "LastName", "IsDeleted", "CreatedDate", "Trust_Stage__c", "Trust_Stage_Since__c", '
        '"Trust_Flags__c", "Trust_Next_Step__c" FROM "Contact" WHERE "Id" = ?',
        C1,
    ) == (
        "Lovelace",
        False,
        dt.datetime(2024, 1, 15, 10, 30),
        "Friend",
        dt.date(2024, 2, 1),
        "Missing listening;Missing thank-you",
        None,
    )
    assert one(
        crm,
        'SELECT "WhoId", "ActivityDate", "IsClosed", "CallDurationInSeconds", "CompletedDateTime" '
        'FROM "Task" WHERE "Id" = ?',
        T1,
    ) == (C1, dt.date(2024, 3, 1), True, 120, dt.datetime(2024, 3, 1, 9, 5))
    assert one(crm, 'SELECT "StartDateTime", "DurationInMinutes", "IsAllDayEvent" FROM "Event"') == (
        dt.datetime(2024, 4, 2, 14),
        60,
        False,
    )


def test_multiline_quoted_subject_survives_import(tmp_path: Path, crm: LocalCrm) -> None:
    subject = 'Feedback call, "QBR" prep\r\nAsked: what would you change?\r\n\r\nThanks, Ada'
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1, subject=subject, Description='a,b\n"c"'), task(T2)])

    report = import_export(crm, tmp_path)

    assert report.imported["Task"] == 2
    assert one(crm, 'SELECT "Subject" FROM "Task" WHERE "Id" = ?', T1) == (subject,)
    assert one(crm, 'SELECT "Subject" FROM "Task" WHERE "Id" = ?', T2) == ("Call",)
    assert "MailingStreet" in report.ignored_columns["Contact"]  # two lines per contact, not kept locally


@pytest.mark.parametrize("lineterminator", ["\n", "\r\n"])
def test_a_byte_order_mark_does_not_hide_the_id_column(tmp_path: Path, crm: LocalCrm, lineterminator: str) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1), contact(C2)], bom=True, lineterminator=lineterminator)
    assert (tmp_path / "Contact.csv").read_bytes().startswith(b'\xef\xbb\xbf"Id"')

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 2}
    assert "Id" not in report.ignored_columns["Contact"]
    assert one(crm, 'SELECT count(*) FROM "Contact" WHERE "Id" IN (?, ?)', C1, C2) == (2,)


def test_activities_without_a_contact_are_imported_without_complaint(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1, who=""), task(T2)])

    report = import_export(crm, tmp_path)

    assert report.imported["Task"] == 2
    assert report.problems == []
    assert one(crm, 'SELECT "WhoId" FROM "Task" WHERE "Id" = ?', T1) == (None,)


def test_lead_activities_keep_their_lead_whoid(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1, who=LEAD)])

    report = import_export(crm, tmp_path)

    assert report.problems == []
    assert one(crm, 'SELECT "WhoId" FROM "Task"') == (LEAD,)


def test_unknown_columns_are_ignored_and_missing_ones_left_empty(tmp_path: Path, crm: LocalCrm) -> None:
    write(
        tmp_path / "Contact.csv",
        ["Id", "LastName", "Favourite_Colour__c", "Name"],
        [{"Id": C1, "LastName": "Lovelace", "Favourite_Colour__c": "green", "Name": "Ada Lovelace"}],
    )

    report = import_export(crm, tmp_path)

    assert report.ignored_columns == {"Contact": ["Favourite_Colour__c", "Name"]}
    assert report.problems == []
    assert one(crm, 'SELECT "LastName", "Email", "CreatedDate", "IsDeleted", "Trust_Stage__c" FROM "Contact"') == (
        "Lovelace",
        None,
        None,
        False,
        None,
    )


def test_15_character_ids_become_18_character_ids(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1[:15], OwnerId=U1[:15])])
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1[:15], who=C1[:15])])

    import_export(crm, tmp_path)

    assert one(crm, 'SELECT "Id", "OwnerId" FROM "Contact"') == (C1, U1)
    assert one(crm, 'SELECT "Id", "WhoId" FROM "Task"') == (T1, C1)
    assert one(crm, 'SELECT "Id" FROM "Contact"') == (ids.to18(C1[:15]),)


def test_datetimes_with_an_offset_are_stored_as_utc(tmp_path: Path, crm: LocalCrm) -> None:
    stamps = {
        T1: "2024-01-15T10:30:00.000Z",
        T2: "2024-01-15T10:30:00.000+0000",
        T3: "2024-01-15T12:30:00.000+0200",
        T4: "2024-01-15T05:00:00-05:30",
    }
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(tmp_path / "Task.csv", TASK_HEADER, [task(t, CreatedDate=s) for t, s in stamps.items()])

    import_export(crm, tmp_path)

    got = dict(crm.con.execute('SELECT "Id", "CreatedDate" FROM "Task"').fetchall())
    assert got == {
        T1: dt.datetime(2024, 1, 15, 10, 30),
        T2: dt.datetime(2024, 1, 15, 10, 30),
        T3: dt.datetime(2024, 1, 15, 10, 30),
        T4: dt.datetime(2024, 1, 15, 10, 30),
    }


def test_checkboxes_read_as_1_0_or_true_false_and_deleted_records_stay_deleted(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1, IsDeleted="1"), contact(C2, IsDeleted="false")])
    write(
        tmp_path / "Task.csv",
        TASK_HEADER,
        [task(T1, IsDeleted="true", IsClosed="0"), task(T2, IsDeleted="0", IsClosed="TRUE")],
    )

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 2, "Task": 2}
    assert dict(crm.con.execute('SELECT "Id", "IsDeleted" FROM "Contact"').fetchall()) == {C1: True, C2: False}
    assert dict(crm.con.execute('SELECT "Id", ("IsDeleted", "IsClosed") FROM "Task"').fetchall()) == {
        T1: (True, False),
        T2: (False, True),
    }
    assert crm.counts()["Contact"] == 1  # the deleted one is there, and known to be deleted


def test_the_reps_listening_answer_is_imported_as_yes_no_or_unset(tmp_path: Path, crm: LocalCrm) -> None:
    """Trust_Listening__c is a picklist whose values are 'true' and 'false' (labelled Yes and No): the export holds
    the values, and an activity nobody marked has it empty, which the rules read as "the words decide"."""
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    header = [*TASK_HEADER, "Trust_Listening__c"]
    write(
        tmp_path / "Task.csv",
        header,
        [task(T1, Trust_Listening__c="true"), task(T2, Trust_Listening__c="false"), task(T3, Trust_Listening__c="")],
    )

    import_export(crm, tmp_path)

    got = dict(crm.con.execute('SELECT "Id", "Trust_Listening__c" FROM "Task"').fetchall())
    assert got == {T1: True, T2: False, T3: None}


# --- what cannot be used ------------------------------------------------------------------------------------


def test_a_bad_date_after_a_multiline_field_is_reported_on_its_own_line(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(
        tmp_path / "Task.csv",
        TASK_HEADER,
        [
            task(T1, subject="line one\r\nline two\r\nline three"),  # lines 2-4
            task(T2, Description="x\ny"),  # lines 5-6
            task(T3, ActivityDate="2024-02-30"),  # line 7
            task(T4),  # line 8
        ],
    )
    assert (tmp_path / "Task.csv").read_text(encoding="utf-8").splitlines()[6].startswith(f'"{T3}"')

    report = import_export(crm, tmp_path)

    assert report.imported["Task"] == 3
    assert report.skipped["Task"] == 1
    [problem] = report.problems
    assert (problem.file, problem.line, problem.record_id) == ("Task.csv", 7, T3)
    assert str(problem) == f'Task.csv:7: {T3}: ActivityDate "2024-02-30" is not a date (YYYY-MM-DD)'
    assert one(crm, 'SELECT count(*) FROM "Task" WHERE "Id" = ?', T3) == (0,)


def test_unusable_records_are_skipped_and_located(tmp_path: Path, crm: LocalCrm) -> None:
    rows = [
        contact(C1),  # 2: fine
        contact("003-not-an-id"),  # 3
        contact(""),  # 4
        contact(T1),  # 5: a Task Id in Contact.csv
        contact(C2[:15] + "ZZZ"),  # 6: wrong case-safe suffix
        contact(C3, CreatedDate="15/01/2024 10:30", OwnerId="nobody"),  # 7: two problems
    ]
    path = write(tmp_path / "Contact.csv", CONTACT_HEADER, [r | {"MailingStreet": "1 Main St"} for r in rows])
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write('"003000000000009AAA","0"\n')  # 8: truncated record
        f.write("\n")  # 9: blank line, ignored

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 1}
    assert report.skipped == {"Contact": 6}
    assert [(p.line, p.record_id) for p in report.problems] == [
        (3, "003-not-an-id"),
        (4, None),
        (5, T1),
        (6, C2[:15] + "ZZZ"),
        (7, C3),
        (8, "003000000000009AAA"),
    ]
    messages = [p.message for p in report.problems]
    assert messages[0] == 'Id "003-not-an-id" is not a Salesforce Id'
    assert messages[1] == "no Id"
    assert messages[2] == f'Id "{T1}" is not a Contact Id (those start with 003)'
    assert messages[3] == f'Id "{C2[:15]}ZZZ" is not a Salesforce Id'
    assert 'OwnerId "nobody" is not a Salesforce Id' in messages[4]
    assert 'CreatedDate "15/01/2024 10:30" is not a date-time' in messages[4]
    assert messages[5] == f"has 2 fields, the header has {len(CONTACT_HEADER)}"
    assert str(report.problems[1]) == "Contact.csv:4: no Id"


def test_duplicate_ids_last_one_wins_and_is_noted(tmp_path: Path, crm: LocalCrm) -> None:
    write(
        tmp_path / "Contact.csv",
        CONTACT_HEADER,
        [  # two physical lines per contact (MailingStreet)
            contact(C1, "First"),
            contact(C2),
            contact(C1[:15], "Second"),
            contact(C1, "Third"),
        ],
    )

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 2}
    assert report.skipped == {"Contact": 2}
    assert one(crm, 'SELECT "LastName" FROM "Contact" WHERE "Id" = ?', C1) == ("Third",)
    assert [(p.line, p.record_id, p.message) for p in report.problems] == [
        (2, C1, "duplicate Id: the record on line 8 replaces this one"),
        (6, C1, "duplicate Id: the record on line 8 replaces this one"),
    ]


def test_large_files_are_read_in_batches_and_problem_lists_are_capped(
    tmp_path: Path, crm: LocalCrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "BATCH_ROWS", 3)
    monkeypatch.setattr(export, "MAX_PROBLEMS_PER_FILE", 4)
    rows = [contact(ids.make(ids.CONTACT, n), CreatedDate="bad" if n % 2 else "2024-01-01") for n in range(20)]
    rows.append(contact(ids.make(ids.CONTACT, 0), "Later"))  # duplicate across batches
    write(tmp_path / "Contact.csv", CONTACT_HEADER, rows)

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 10}
    assert report.skipped == {"Contact": 11}
    assert len(report.problems) == 4
    assert report.problems_not_listed == {"Contact": 7}
    assert [p.line for p in report.problems] == [2, 4, 8, 12]  # contact n starts on line 2 + 2n
    assert one(crm, 'SELECT "LastName" FROM "Contact" WHERE "Id" = ?', ids.make(ids.CONTACT, 0)) == ("Later",)


# --- the folder, and failing safely -------------------------------------------------------------------------


def test_missing_contact_csv_is_a_clear_data_error(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1)])

    with pytest.raises(DataError) as err:
        import_export(crm, tmp_path)

    assert str(tmp_path) in str(err.value)
    assert "Contact.csv" in str(err.value)


def test_a_folder_that_is_not_there_is_a_data_error(tmp_path: Path, crm: LocalCrm) -> None:
    with pytest.raises(DataError, match="not a folder"):
        import_export(crm, tmp_path / "nope")


def test_a_file_without_an_id_column_is_a_data_error(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", ["LastName", "Email"], [{"LastName": "X", "Email": "x@y"}])

    with pytest.raises(DataError, match=r"Contact\.csv: the header row has no Id column"):
        import_export(crm, tmp_path)


def previous_import(tmp_path: Path, crm: LocalCrm) -> list[tuple[object, ...]]:
    old = tmp_path / "old"
    old.mkdir()
    write(old / "Contact.csv", CONTACT_HEADER, [contact(C1, "Before")])
    write(old / "Task.csv", TASK_HEADER, [task(T1)])
    import_export(crm, old)
    return snapshot(crm)


def snapshot(crm: LocalCrm) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for t in ("Contact", "Task", "Event", "FieldPicklist")
        for r in crm.con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall()
    ]


def test_a_file_that_is_not_utf8_leaves_the_crm_as_it_was(tmp_path: Path, crm: LocalCrm) -> None:
    before = previous_import(tmp_path, crm)
    new = tmp_path / "new"
    new.mkdir()
    write(new / "Contact.csv", CONTACT_HEADER, [contact(C2, "After")])
    write(new / "Task.csv", TASK_HEADER, [task(T2), task(T3)])
    with (new / "Task.csv").open("ab") as f:
        f.write(f'"{T4}","{C2}","","1","Caf\xe9 chat"\n'.encode("latin-1"))  # an ISO-8859-1 export

    with pytest.raises(DataError, match=r"Task\.csv: not UTF-8 .*UTF-8 encoding"):
        import_export(crm, new)

    assert snapshot(crm) == before


def test_broken_quoting_is_a_data_error_naming_the_line(tmp_path: Path, crm: LocalCrm) -> None:
    path = write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(f'"{C2}","0","never closed\n')

    with pytest.raises(DataError, match=r"Contact\.csv:4: broken CSV quoting"):  # C1 is on lines 2-3
        import_export(crm, tmp_path)


def test_a_failure_while_writing_rolls_back_the_whole_import(
    tmp_path: Path, crm: LocalCrm, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = previous_import(tmp_path, crm)
    new = tmp_path / "new"
    new.mkdir()
    write(new / "Contact.csv", CONTACT_HEADER, [contact(C2, "After")])
    write(new / "Task.csv", TASK_HEADER, [task(T2)])
    real_insert = export._insert

    def insert_then_fail_on_task(con: object, obj: str, names: list[str], *, replace: bool) -> int:
        if obj == "Task":
            msg = "disk full"
            raise OSError(msg)
        return real_insert(con, obj, names, replace=replace)

    monkeypatch.setattr(export, "_insert", insert_then_fail_on_task)

    with pytest.raises(OSError, match="disk full"):
        import_export(crm, new)

    assert snapshot(crm) == before
    assert crm.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_export_import_%'"
    ).fetchone() == (0,)


def test_replace_keeps_a_table_whose_file_is_absent_and_the_picklists(tmp_path: Path, crm: LocalCrm) -> None:
    """Issue 17: an export folder without Task.csv used to empty the Tasks, in silence. A table the folder has a
    file for is replaced; one it has none for is kept, and the report counts what was kept."""
    previous_import(tmp_path, crm)
    crm.set_picklist("Trust_Stage__c", ["Stranger", "Ally"])
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C2)])

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 1}
    assert crm.con.execute('SELECT "Id" FROM "Contact"').fetchall() == [(C2,)]
    assert crm.con.execute('SELECT "Id" FROM "Task"').fetchall() == [(T1,)]
    assert report.kept == {"Task": 1}
    assert crm.picklist_values()["Trust_Stage__c"] == ["Stranger", "Ally"]


def test_without_replace_records_are_upserted_and_absent_columns_kept(tmp_path: Path, crm: LocalCrm) -> None:
    previous_import(tmp_path, crm)
    crm.con.execute('UPDATE "Contact" SET "Trust_Stage__c" = \'Familiar\'')
    write(
        tmp_path / "Contact.csv", ["Id", "LastName"], [{"Id": C1, "LastName": "Renamed"}, {"Id": C2, "LastName": "New"}]
    )

    report = import_export(crm, tmp_path, replace=False)

    assert report.imported == {"Contact": 2}
    assert dict(crm.con.execute('SELECT "Id", ("LastName", "Trust_Stage__c", "Email") FROM "Contact"').fetchall()) == {
        C1: ("Renamed", "Familiar", "ada@example.com"),
        C2: ("New", None, None),
    }
    assert crm.con.execute('SELECT "Id" FROM "Task"').fetchall() == [(T1,)]


# --- who took part, and which way an email went (issue 8) ------------------------------------------------------


EMAIL_HEADER = [
    "Id",
    "ParentId",
    "ActivityId",
    "CreatedById",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "TextBody",
    "Subject",
    "FromName",
    "FromAddress",
    "ToAddress",
    "Incoming",
    "HasAttachment",
    "Status",
    "MessageDate",
    "IsDeleted",
    "ReplyToEmailMessageId",
]
TASK_RELATION_HEADER = ["Id", "RelationId", "TaskId", "IsWhat", "AccountId", "CreatedDate", "IsDeleted"]
EVENT_RELATION_HEADER = [
    "Id",
    "RelationId",
    "EventId",
    "IsWhat",
    "IsParent",
    "IsInvitee",
    "IsOrganizer",
    "Status",
    "RespondedDate",
    "Response",
    "IsDeleted",
]


def test_emails_and_relations_are_imported_when_the_export_has_them(tmp_path: Path, crm: LocalCrm) -> None:
    m1, m2 = ids.make(ids.EMAIL_MESSAGE, 1), ids.make(ids.EMAIL_MESSAGE, 2)
    r1, r2 = ids.make(ids.TASK_RELATION, 1), ids.make(ids.TASK_RELATION, 2)
    v1 = ids.make(ids.EVENT_RELATION, 1)
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1), contact(C2, "Hopper")], bom=True)
    write(tmp_path / "Task.csv", TASK_HEADER, [task(T1, TaskSubtype="Email"), task(T2)])
    write(
        tmp_path / "Event.csv",
        ["Id", "WhoId", "Subject", "StartDateTime", "ActivityDate", "IsDeleted"],
        [
            {
                "Id": E1,
                "WhoId": C1,
                "Subject": "QBR",
                "StartDateTime": "2024-04-02T14:00:00.000Z",
                "ActivityDate": "2024-04-02",
                "IsDeleted": "0",
            }
        ],
    )
    write(
        tmp_path / "EmailMessage.csv",
        EMAIL_HEADER,
        [
            {
                "Id": m1[:15],
                "ActivityId": T1[:15],
                "Incoming": "1",
                "MessageDate": "2024-03-01T09:00:00.000Z",
                "Subject": 'Re: "pricing", again',
                "TextBody": "line one\nline two",
                "Status": "3",
                "IsDeleted": "0",
            },
            {"Id": m2, "ActivityId": T2, "Incoming": "yes", "IsDeleted": "0"},
        ],
    )
    write(
        tmp_path / "TaskRelation.csv",
        TASK_RELATION_HEADER,
        [
            {"Id": r1, "RelationId": C2, "TaskId": T2, "IsWhat": "0", "IsDeleted": "0"},
            {"Id": r2, "RelationId": A1, "TaskId": T2, "IsWhat": "1", "IsDeleted": "0"},
        ],
    )
    write(
        tmp_path / "EventRelation.csv",
        EVENT_RELATION_HEADER,
        [
            {
                "Id": v1,
                "RelationId": C2,
                "EventId": E1,
                "IsWhat": "0",
                "IsParent": "0",
                "IsInvitee": "1",
                "Status": "Declined",
                "IsDeleted": "0",
            }
        ],
    )

    report = import_export(crm, tmp_path)

    assert report.imported["EmailMessage"] == 1
    assert (report.imported["TaskRelation"], report.imported["EventRelation"]) == (2, 1)
    assert [str(p) for p in report.problems] == [
        f'EmailMessage.csv:4: {m2}: Incoming "yes" is not a checkbox value (1, 0, true or false)'
    ]
    assert one(crm, 'SELECT "Id", "ActivityId", "Incoming" FROM "EmailMessage"') == (m1, T1, True)
    assert one(crm, 'SELECT "Status" FROM "EventRelation"') == ("Declined",)
    crm.prepare(FieldsSection())
    credited = crm.con.execute(
        'SELECT "Id", "WhoId", "Incoming", "Declined" FROM crm_activity ORDER BY 1, 2'
    ).fetchall()
    assert sorted(credited) == sorted(
        [
            (T1, C1, True, False),
            (T2, C1, None, False),
            (T2, C2, None, False),
            (E1, C1, None, False),
            (E1, C2, None, True),
        ]
    )


# --- deals, for calibration ------------------------------------------------------------------------------------

# The columns of a real export's Opportunity.csv and OpportunityContactRole.csv (a selection: the Data Export writes
# every field the object has; those the local CRM does not keep are ignored).
OPPORTUNITY_HEADER = [
    "Id",
    "IsDeleted",
    "AccountId",
    "IsPrivate",
    "Name",
    "StageName",
    "Amount",
    "Probability",
    "CloseDate",
    "Type",
    "IsClosed",
    "IsWon",
    "ForecastCategory",
    "OwnerId",
    "CreatedDate",
    "SystemModstamp",
]
ROLE_HEADER = ["Id", "OpportunityId", "ContactId", "Role", "IsPrimary", "CreatedDate", "SystemModstamp", "IsDeleted"]
O1, O2 = (ids.make(ids.OPPORTUNITY, n) for n in (1, 2))
R1, R2 = (ids.make(ids.OPPORTUNITY_CONTACT_ROLE, n) for n in (1, 2))


def opportunity(oid: str, **kw: str) -> dict[str, str]:
    row = {
        "Id": oid,
        "IsDeleted": "0",
        "AccountId": A1,
        "IsPrivate": "0",
        "Name": "Acme renewal 2024",
        "StageName": "Closed Won",
        "Amount": "12000.00",
        "Probability": "100",
        "CloseDate": "2024-05-10",
        "Type": "Renewal",
        "IsClosed": "1",
        "IsWon": "1",
        "ForecastCategory": "Closed",
        "OwnerId": U1,
        "CreatedDate": "2024-03-01T09:00:00.000Z",
        "SystemModstamp": "2024-05-10T09:00:00.000Z",
    }
    return row | kw


def test_deals_and_their_contact_roles_are_imported_for_calibration(tmp_path: Path, crm: LocalCrm) -> None:
    """Opportunity.csv and OpportunityContactRole.csv land beside the contacts; a role whose Id is not a contact
    role's is skipped and located, as in every other file."""
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(tmp_path / "Opportunity.csv", OPPORTUNITY_HEADER, [opportunity(O1), opportunity(O2, IsWon="0")])
    role = {"OpportunityId": O1, "ContactId": C1, "Role": "Decision Maker", "IsPrimary": "1", "IsDeleted": "0"}
    path = write(tmp_path / "OpportunityContactRole.csv", ROLE_HEADER, [{"Id": R1, **role}, {"Id": T1, **role}])

    report = import_export(crm, tmp_path)

    assert report.imported == {"Contact": 1, "Opportunity": 2, "OpportunityContactRole": 1}
    assert [str(p) for p in report.problems] == [
        f'{path.name}:3: {T1}: Id "{T1}" is not an OpportunityContactRole Id (those start with 00K)'
    ]
    assert one(crm, 'SELECT "Type", "IsWon", "CloseDate" FROM "Opportunity" WHERE "Id" = ?', O1) == (
        "Renewal",
        True,
        dt.date(2024, 5, 10),
    )
    assert one(crm, 'SELECT "OpportunityId", "ContactId", "IsPrimary" FROM "OpportunityContactRole"') == (O1, C1, True)
    assert "Amount" in report.ignored_columns["Opportunity"]


# --- account names, for the digest (issue 19) ----------------------------------------------------------------------


# Account.csv as the Data Export writes it: many more columns than the name the local CRM keeps.
ACCOUNT_HEADER = [
    "Id",
    "IsDeleted",
    "MasterRecordId",
    "Name",
    "Type",
    "ParentId",
    "BillingCity",
    "Industry",
    "OwnerId",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
]


def test_account_names_are_imported_from_account_csv_and_the_rest_of_it_ignored(tmp_path: Path, crm: LocalCrm) -> None:
    a2 = ids.make(ids.ACCOUNT, 2)
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1), contact(C2, "Hopper", AccountId=a2)])
    write(
        tmp_path / "Account.csv",
        ACCOUNT_HEADER,
        [
            {
                "Id": A1[:15],  # a 15-character Id, as some exports write them
                "IsDeleted": "0",
                "Name": 'Northfield, "West" Inc',  # a comma and quotes inside the quoted value
                "Type": "Customer",
                "BillingCity": "Leeds",
                "OwnerId": U1,
                "CreatedDate": "2023-01-10T09:00:00.000Z",
                "SystemModstamp": "2024-01-10T09:00:00.000Z",
            },
            {"Id": a2, "IsDeleted": "1", "Name": "Closed Ltd", "SystemModstamp": "2024-01-10T09:00:00.000Z"},
        ],
    )

    report = import_export(crm, tmp_path)

    assert report.imported == {"Account": 2, "Contact": 2}
    assert report.problems == []
    assert {"Type", "BillingCity", "Industry", "OwnerId", "ParentId"} <= set(report.ignored_columns["Account"])
    assert crm.con.execute('SELECT "Id", "Name", "IsDeleted" FROM "Account" ORDER BY "Id"').fetchall() == [
        (A1, 'Northfield, "West" Inc', False),
        (a2, "Closed Ltd", True),
    ]


def test_a_record_of_account_csv_that_is_not_an_account_is_skipped_and_located(tmp_path: Path, crm: LocalCrm) -> None:
    write(tmp_path / "Contact.csv", CONTACT_HEADER, [contact(C1)])
    write(tmp_path / "Account.csv", ["Id", "Name"], [{"Id": A1, "Name": "Northfield Inc"}, {"Id": C2, "Name": "Oops"}])

    report = import_export(crm, tmp_path)

    assert report.imported["Account"] == 1
    assert [str(p) for p in report.problems] == [
        f'Account.csv:3: {C2}: Id "{C2}" is not an Account Id (those start with 001)'
    ]


def test_a_bounced_contact_keeps_its_bounce_for_calibration(tmp_path: Path, crm: LocalCrm) -> None:
    """A Data Export's Contact.csv carries bounce management's fields (Object Reference, "Contact"): they land in the
    local CRM, for a contact_gone outcome to read; a contact without a bounce keeps them empty."""
    header = [*CONTACT_HEADER, "IsEmailBounced", "EmailBouncedDate", "EmailBouncedReason"]
    bounced = contact(
        C1, IsEmailBounced="1", EmailBouncedDate="2024-05-10T08:30:00.000Z", EmailBouncedReason="550 5.1.1 unknown"
    )
    write(tmp_path / "Contact.csv", header, [bounced, contact(C2, IsEmailBounced="0")])

    report = import_export(crm, tmp_path)

    assert report.problems == []
    rows = crm.con.execute('SELECT "Id", "IsEmailBounced", "EmailBouncedDate" FROM "Contact" ORDER BY "Id"').fetchall()
    assert rows == [(C1, True, dt.datetime(2024, 5, 10, 8, 30)), (C2, False, None)]
