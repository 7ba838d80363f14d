"""What the backend remembers about the org between runs, in the mirror's `_TrustLadderMeta` beside the data and
watermarks it belongs to (a new mirror, a new org or a reset, starts with none of it):

- the Contact describe, and when it was read. It is used for a day (`FRESH`), then read again; `fields check`
  always reads it again, and so does a run whose remembered describe finds a problem (a missing field, a lacking
  picklist value, a field not writable) or whose query names a field the org refuses: a remembered describe never
  refuses a run on its own.
- which optional objects (EmailMessage, TaskRelation, EventRelation) the org lacks, and since when: looked for
  again after a day, not on every run (connector.crm.salesforce.details keeps their describes the same way).
- the windows of our own Contact writes (connector.crm.salesforce.own_writes).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from connector.crm.local.store import LocalCrm

FRESH = dt.timedelta(days=1)

CONTACT_DESCRIBE = "salesforce.contact_describe"
CONTACT_DESCRIBED_AT = "salesforce.contact_described_at"


def _time(mirror: LocalCrm, key: str) -> dt.datetime | None:
    value = mirror.meta(key)
    if not value:
        return None
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def fresh(mirror: LocalCrm, key: str, now: dt.datetime) -> bool:
    """The time kept under `key` is less than a day old (a time in the future is not trusted)."""
    stamp = _time(mirror, key)
    return stamp is not None and dt.timedelta(0) <= now - stamp < FRESH


def contact_describe(mirror: LocalCrm, now: dt.datetime) -> dict[str, Any] | None:
    """The remembered Contact describe, when it is less than a day old."""
    if not fresh(mirror, CONTACT_DESCRIBED_AT, now):
        return None
    try:
        body = json.loads(mirror.meta(CONTACT_DESCRIBE) or "null")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def keep_contact_describe(mirror: LocalCrm, body: dict[str, Any], now: dt.datetime) -> None:
    mirror.set_meta(CONTACT_DESCRIBE, json.dumps(body))
    mirror.set_meta(CONTACT_DESCRIBED_AT, now.isoformat())


def forget(mirror: LocalCrm, *keys: str) -> None:
    for key in keys:
        mirror.con.execute('DELETE FROM "_TrustLadderMeta" WHERE "Key" = ?', [key])
