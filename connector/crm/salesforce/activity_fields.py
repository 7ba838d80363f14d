"""The activity fields an org may not have (connector.vocabulary.OPTIONAL_ACTIVITY_FIELDS: Trust_Listening__c, the
rep's word on whether a conversation was listening): pulled only where the Task or Event describe lists them.

A field the org lacks (our metadata not deployed) or that the sync user cannot see (field-level security) is
absent from the object's describe ("Get Field and Other Metadata for an Object"); a query naming it is refused
with INVALID_FIELD. So the pull names it only when the describe lists it, and it is NULL in the mirror otherwise,
which the rules read as "unset". The describes ride in the run's first Composite call, like those of the optional
objects (connector.crm.salesforce.details), and are kept for a day (`remembered.FRESH`). The call that brings a
describe also opens the pulls, so the list it gives is used at once only by a full pull (its rows are read after
that call); an incremental pull goes by the list kept the run before, and a field that appeared since makes the
next pull of the object a full one (connector.crm.salesforce.mirror_pull.plan).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from simple_salesforce.exceptions import SalesforceError

from connector import log, vocabulary
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import composite, remembered

_log = log.get("trust_ladder.salesforce")

OBJECTS = ("Task", "Event")


def _key(obj: str) -> str:
    return f"salesforce.optional_fields.{obj}"


def _at(obj: str) -> str:
    return f"salesforce.optional_fields_at.{obj}"


def _asked(wanted: dict[str, list[str]], obj: str) -> list[str]:
    return [f for f in wanted.get(obj, []) if f in vocabulary.OPTIONAL_ACTIVITY_FIELDS]


def _kept(mirror: LocalCrm, obj: str) -> list[str] | None:
    value = mirror.meta(_key(obj))
    if value is None:
        return None
    try:
        kept = json.loads(value)
    except ValueError:
        return None
    return [str(f) for f in kept] if isinstance(kept, list) else None


def describe_subs(mirror: LocalCrm, wanted: dict[str, list[str]], now: dt.datetime) -> list[composite.Sub]:
    """The describes this run needs: of each activity object whose pull would name an optional field, when none is
    kept or the kept one is a day old."""
    return [
        composite.Sub(f"describe_{obj}", f"sobjects/{obj}/describe")
        for obj in OBJECTS
        if _asked(wanted, obj) and not (_kept(mirror, obj) is not None and remembered.fresh(mirror, _at(obj), now))
    ]


def take(
    mirror: LocalCrm, answers: dict[str, composite.Answer], wanted: dict[str, list[str]], now: dt.datetime
) -> None:
    """Keep which optional fields each describe in `answers` lists; say which of those the rules read it lacks."""
    for obj in OBJECTS:
        answer = answers.get(f"describe_{obj}")
        if answer is None:
            continue
        if isinstance(answer, SalesforceError):
            raise answer
        listed = {str(f.get("name")) for f in _fields(answer) if isinstance(f, dict)}
        present = [f for f in vocabulary.OPTIONAL_ACTIVITY_FIELDS if f in listed]
        mirror.set_meta(_key(obj), json.dumps(present))
        mirror.set_meta(_at(obj), now.isoformat())
        hidden = [f for f in _asked(wanted, obj) if f not in present]
        if hidden:
            _log.info(
                "salesforce.fields_hidden",
                object=obj,
                fields=hidden,
                effect="pulled as NULL: the rules read them as unset",
                reason="not in the object's describe (not deployed, or hidden by field-level security)",
            )


def _fields(body: Any) -> list[Any]:
    fields = body.get("fields", []) if isinstance(body, dict) else []
    return fields if isinstance(fields, list) else []


def narrow(mirror: LocalCrm, wanted: dict[str, list[str]]) -> dict[str, list[str]]:
    """`wanted` without the optional fields the kept describes do not list (all of them while none is kept)."""
    out = dict(wanted)
    for obj in OBJECTS:
        seen = set(_kept(mirror, obj) or [])
        hidden = [f for f in _asked(wanted, obj) if f not in seen]
        if hidden:
            out[obj] = [f for f in wanted[obj] if f not in hidden]
    return out
