"""The failures file of a run: every record it could not write, and every row it set aside, named by Id.

One JSON object a line (`run_id`, `object`, `id`, `kind` = `failed` | `skipped`, `code`, `message`), in
`failures/<run_id>.jsonl` beside the state store. Log lines name the first few and point here; `status` shows
the path. The file is written only when there is something to name, and the oldest files are removed once there
are more than `KEEP`, so a schedule that runs every 15 minutes cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from connector import ids
from connector.crm import RecordFailure

KEEP = 500  # failures files kept (five days of a 15-minute schedule that fails every run)
FOLDER = "failures"

_OBJECTS = {ids.CONTACT: "Contact", ids.TASK: "Task", ids.EVENT: "Event", ids.LEAD: "Lead"}

# What each reason for setting a row aside means, for a reader of the file.
REASONS = {
    "no_who": "the activity has no WhoId (it is about an Account or Opportunity only)",
    "lead": "the activity is about a Lead; leads have no trust ladder",
    "not_a_contact": "the activity's WhoId is not a Contact",
    "unknown_contact": "the activity's WhoId is a Contact this CRM does not hold (deleted, or not shared)",
    "no_date": "the activity has no usable date",
    "malformed_id": "the record's Id (or the activity's WhoId) is not a well-formed Salesforce Id",
}


def folder(state_path: Path) -> Path:
    return state_path.parent / FOLDER


def path_for(state_path: Path, run_id: str) -> Path:
    return folder(state_path) / f"{run_id}.jsonl"


def object_of(record_id: str) -> str:
    """The object a Salesforce Id names, from its key prefix."""
    return _OBJECTS.get(record_id[:3], "unknown")


@dataclass
class FailuresFile:
    """A run's failures file, created with its first line."""

    path: Path
    run_id: str
    failed: int = 0
    skipped: int = 0

    @property
    def written(self) -> bool:
        return bool(self.failed or self.skipped)

    @property
    def shown(self) -> str | None:
        """The path, for log lines and the run history; None while nothing was written."""
        return str(self.path) if self.written else None

    def add_failures(self, failures: Iterable[RecordFailure]) -> None:
        lines = [
            {
                "run_id": self.run_id,
                "object": object_of(f.record_id),
                "id": f.record_id,
                "kind": "failed",
                "code": f.code,
                "message": f.message,
            }
            for f in failures
        ]
        self._append(lines)
        self.failed += len(lines)

    def add_skipped(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """The same lines as `_line` gives, each object and reason rendered once: an org that keeps a hundred
        thousand activities about leads sets them all aside on every run, and a JSON object a row cost most of
        writing them."""
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        around: dict[tuple[str, str], tuple[str, str]] = {}
        lines: list[str] = []
        for obj, rid, reason in rows:
            ends = around.get((obj, reason))
            if ends is None:
                ends = around[(obj, reason)] = _ends(self.run_id, obj, reason)
            lines.append(ends[0] + dumps(rid) + ends[1])
        self._write(lines)
        self.skipped += len(lines)

    def _append(self, lines: list[dict[str, str]]) -> None:
        self._write([_line(line) for line in lines])

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        if not self.written:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            prune(self.path.parent)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.writelines(lines)


def _line(fields: dict[str, str]) -> str:
    return json.dumps(fields, ensure_ascii=False) + "\n"


def _ends(run_id: str, obj: str, reason: str) -> tuple[str, str]:
    """A skipped row's line of `obj` and `reason` before and after its Id: `_line`'s keys, order and separators."""
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    before = f'{{"run_id": {dumps(run_id)}, "object": {dumps(obj)}, "id": '
    after = f', "kind": "skipped", "code": {dumps(reason)}, "message": {dumps(REASONS.get(reason, reason))}}}\n'
    return before, after


def prune(where: Path, keep: int = KEEP) -> None:
    """Remove the oldest failures files beyond `keep - 1`, making room for one more."""
    found = sorted(where.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    for old in found[: max(0, len(found) - keep + 1)]:
        with contextlib.suppress(FileNotFoundError):  # another process pruned it first
            old.unlink()


def read(path: Path) -> list[dict[str, str]]:
    """Every line of a failures file (for `status` and tests)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
