"""One chunk of activities, as columns: each persona's signature history, filler, and rows the engine must ignore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from connector.crm.local.demo._days import offsets
from connector.crm.local.demo._personas import PERSONAS, Block, Gratitude
from connector.crm.local.demo._templates import (
    GROUP_IDS,
    IS_FEEDBACK,
    IS_REFERRAL,
    THANKS_FOR_BUSINESS,
    THANKS_FOR_REFERRAL,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

NO_WHO_SHARE = 0.015  # activities about a Lead or about nobody, which the engine must ignore
DELETED_SHARE = 0.005  # deleted activities (IsDeleted = true), also to be ignored

# Whom an activity is about (WhoId).
_ABOUT_CONTACT, _ABOUT_NOBODY, ABOUT_LEAD, ABOUT_CONTACT_DELETED = 0, 1, 2, 3


@dataclass
class Acts:
    """Activities under construction, as lists of column pieces: contact (chunk-local, -1 for none),
    template, days ago and whom it is about."""

    contact: list[Ints] = field(default_factory=list)
    template: list[Ints] = field(default_factory=list)
    offset: list[Ints] = field(default_factory=list)
    who: list[Ints] = field(default_factory=list)

    def add(self, contact: Ints, template: Ints, offset: Ints, who: int | Ints = _ABOUT_CONTACT) -> None:
        self.contact.append(contact)
        self.template.append(template)
        self.offset.append(offset)
        self.who.append(np.broadcast_to(np.asarray(who, dtype=np.int64), contact.shape))

    def size(self) -> int:
        return sum(len(c) for c in self.contact)

    def columns(self) -> tuple[Ints, Ints, Ints, Ints]:
        def cat(parts: list[Ints]) -> Ints:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

        return cat(self.contact), cat(self.template), cat(self.offset), cat(self.who)


def _choose(rng: np.random.Generator, group: str, n: int) -> Ints:
    ids = GROUP_IDS[group]
    return ids[rng.integers(0, len(ids), size=n)]


def _block(rng: np.random.Generator, acts: Acts, members: Ints, age: Ints, b: Block) -> None:
    chosen = members[rng.random(len(members)) < b.share] if b.share < 1 else members
    counts = rng.integers(b.lo, b.hi + 1, size=len(chosen))
    rows = np.repeat(chosen, counts)
    oldest = np.minimum(b.oldest, age[rows])  # never before the contact existed
    keep = oldest >= b.newest
    rows, oldest = rows[keep], oldest[keep]
    acts.add(rows, _choose(rng, b.group, len(rows)), offsets(rng, b.newest, oldest))


def _gratitude(rng: np.random.Generator, acts: Acts, members: Ints, age: Ints, g: Gratitude) -> None:
    rows = members[rng.random(len(members)) < g.share]
    oldest = np.minimum(g.oldest, age[rows])
    keep = oldest >= g.newest
    rows, oldest = rows[keep], oldest[keep]
    trig = _choose(rng, g.group, len(rows))
    off = offsets(rng, g.newest, oldest)
    acts.add(rows, trig, off)
    if g.thanked:
        # Thanked the same day or within the next week, never later than yesterday.
        lag = np.minimum(rng.integers(0, 7, size=len(rows)), np.maximum(off - 1, 0))
        thanks = np.where(
            IS_FEEDBACK[trig], _choose(rng, "thanks_feedback", len(rows)), _choose(rng, "thanks", len(rows))
        )
        thanks = np.where(IS_REFERRAL[trig] & (thanks == THANKS_FOR_BUSINESS), THANKS_FOR_REFERRAL, thanks)
        acts.add(rows, thanks, off - lag)


def chunk_activities(rng: np.random.Generator, persona: Ints, age: Ints, target: int) -> Acts:
    """Each persona's signature activities, filler up to `target`, then Lead/no-contact and deleted rows."""
    acts = Acts()
    for code, p in enumerate(PERSONAS):
        members = np.flatnonzero(persona == code).astype(np.int64)
        for b in p.blocks:
            _block(rng, acts, members, age, b)
        for g in p.gratitude:
            _gratitude(rng, acts, members, age, g)

    # Filler: outbound mail, to-dos and calls spread over each contact's older history, more for the closer
    # relationships, never inside the windows that decide the persona's rung and flags.
    extra = round(target * NO_WHO_SHARE)
    filler = max(0, target - acts.size() - extra)
    filler_from = np.array([p.filler_from for p in PERSONAS], dtype=np.int64)[persona]
    weight = np.array([p.filler_weight for p in PERSONAS])[persona] * (age > filler_from)
    if filler and weight.sum() > 0:
        rows = np.repeat(np.arange(len(persona), dtype=np.int64), rng.poisson(weight * (filler / weight.sum())))
        kind = rng.choice(4, size=len(rows), p=[0.5, 0.25, 0.2, 0.05])
        template = np.choose(
            kind, [_choose(rng, g, len(rows)) for g in ("out_email", "todo", "out_call", "list_email")]
        )
        acts.add(rows, template, offsets(rng, 0, age[rows] - filler_from[rows]) + filler_from[rows])

    lead = rng.random(extra) < 0.6
    acts.add(
        np.full(extra, -1, dtype=np.int64),
        np.where(lead, _choose(rng, "lead", extra), _choose(rng, "internal", extra)),
        offsets(rng, 1, np.full(extra, 730, dtype=np.int64)),
        np.where(lead, ABOUT_LEAD, _ABOUT_NOBODY),
    )
    deleted = round(target * DELETED_SHARE)
    rows = rng.integers(0, len(persona), size=deleted, dtype=np.int64)
    acts.add(rows, _choose(rng, "deleted", deleted), offsets(rng, 1, np.minimum(179, age[rows])), ABOUT_CONTACT_DELETED)
    return acts
