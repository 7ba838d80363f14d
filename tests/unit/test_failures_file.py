"""A run's failures file: one JSON object a line, every row set aside named with what it means."""

from __future__ import annotations

import json
from pathlib import Path

from connector import failures
from connector.crm import RecordFailure


def test_every_row_set_aside_is_a_json_line_with_its_object_id_reason_and_meaning(tmp_path: Path) -> None:
    rows = [
        ("Task", "00T8d0000000001EAA", "lead"),
        ("Event", "00U8d0000000002EAA", "no_date"),
        ("Task", "00T8d0000000003EAA", "lead"),
        ("Task", 'a "quoted" \\ Id', "malformed_id"),
        ("EventRelation", "zürich\u2028ünicode\x01", "some_new_reason"),
    ]
    file = failures.FailuresFile(tmp_path / "failures" / "r1.jsonl", 'run "1"')
    file.add_skipped(rows)
    file.add_failures([RecordFailure("0038d00000000AAAAA", "ROW_LOCK", "unable to obtain exclusive access")])

    text = file.path.read_text(encoding="utf-8")
    expected = [
        json.dumps(
            {
                "run_id": 'run "1"',
                "object": obj,
                "id": rid,
                "kind": "skipped",
                "code": reason,
                "message": failures.REASONS.get(reason, reason),
            },
            ensure_ascii=False,
        )
        for obj, rid, reason in rows
    ]
    assert text.split("\n")[:-2] == expected
    read = failures.read(file.path)
    assert [(r["object"], r["id"], r["code"]) for r in read[:-1]] == rows
    assert read[1]["message"] == "the activity has no usable date"
    assert read[-1]["kind"] == "failed"
    assert read[-1]["object"] == "Contact"
    assert (file.skipped, file.failed) == (5, 1)


def test_a_run_id_or_object_that_looks_like_json_does_not_move_the_id(tmp_path: Path) -> None:
    odd = ['"\x00id\x00', '", "id": "x', "\\", "}"]
    for i, text in enumerate(odd):
        file = failures.FailuresFile(tmp_path / f"f{i}.jsonl", text)
        file.add_skipped([(text, "00T8d0000000001EAA", text), ("Task", text, "lead")])
        lines = file.path.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == [
            {
                "run_id": text,
                "object": text,
                "id": "00T8d0000000001EAA",
                "kind": "skipped",
                "code": text,
                "message": text,
            },
            {
                "run_id": text,
                "object": "Task",
                "id": text,
                "kind": "skipped",
                "code": "lead",
                "message": failures.REASONS["lead"],
            },
        ]
