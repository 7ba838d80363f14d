"""Personas: kinds of relationship, each with the activity history that puts it on a known rung with known flags.

Offsets are days before the evaluation date (1 = yesterday; negative = planned, in the future). Windows of the
default rules: within_days N holds offsets 0..N-1; quarter q holds offsets 91q..91q+90.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

OLDEST = 4 * 365  # contacts were created over the last ~4 years


@dataclass(frozen=True)
class Block:
    """`lo`..`hi` activities from `group`, dated `newest`..`oldest` days ago, for a `share` of the persona."""

    group: str
    lo: int
    hi: int
    newest: int
    oldest: int
    share: float = 1.0


@dataclass(frozen=True)
class Gratitude:
    """A gratitude trigger dated `newest`..`oldest` days ago, thanked on or after it when `thanked`."""

    group: str
    newest: int
    oldest: int
    share: float
    thanked: bool


@dataclass(frozen=True)
class Persona:
    """A kind of relationship, and the rung and flags the default rules should give it."""

    name: str
    weight: float
    rung: str
    flags: tuple[str, ...]
    min_age: int  # contact created this many days ago, at least ...
    max_age: int  # ... and at most
    blocks: tuple[Block, ...] = ()
    gratitude: tuple[Gratitude, ...] = ()
    filler_from: int = 90  # filler (outbound mail, calls, to-dos) only this many days ago or older
    filler_weight: float = 1.0


def _quarters(first: int, last: int, share: float = 1.0) -> tuple[Block, ...]:
    """Two-way contact in each rolling 91-day quarter first..last (quarter 0 starts yesterday)."""
    return tuple(Block("conv", 1, 1, max(1, 91 * q), 91 * q + 90, share) for q in range(first, last + 1))


_MISSING_LISTENING = "Missing listening"
_MISSING_THANK_YOU = "Missing thank-you"

# Outbound touches in the last 90 days stay at 2 or fewer for contacts without a listening conversation there, and
# under 8 for the others, so 'Missing listening' is open exactly where a persona says so.
_FAITHFUL_CORE = (
    Block("conv", 3, 4, 1, 179),
    *_quarters(0, 2),
    Block("listen", 1, 2, 1, 89),
    Block("out_email", 1, 2, 1, 89, 0.8),
    Block("todo", 1, 1, -30, -1, 0.3),
    Block("listen_event", 1, 1, -45, -1, 0.3),
    Block("all_day", 1, 1, 30, 700, 0.03),
)

PERSONAS: tuple[Persona, ...] = (
    Persona(
        "cold",
        0.22,
        "Fringe",
        (),
        3,
        OLDEST,
        (
            Block("out_email", 1, 2, 1, OLDEST, 0.6),  # never 3 in 90 days: no 'Missing listening'
            Block("all_day", 1, 1, 1, OLDEST, 0.02),
        ),
        filler_weight=0.3,
    ),
    Persona(
        "talked_at",
        0.07,
        "Fringe",
        (_MISSING_LISTENING,),
        30,
        OLDEST,
        (
            Block("out_email", 3, 7, 1, 89),
            Block("out_call", 1, 3, 1, 89, 0.5),
            Block("list_email", 1, 2, 1, 89, 0.3),
            Block("in_email", 1, 2, 200, OLDEST, 0.3),
            Block("listen_event", 1, 1, -30, -1, 0.15),  # a planned discovery call does not count yet
        ),
    ),
    Persona(
        "drifting",
        0.06,
        "Fringe",
        (),
        760,
        OLDEST,
        (
            Block("in_email", 1, 3, 365, 730),
            *(Block(g, 1, 2, 365 + 91 * q, 455 + 91 * q) for q, g in enumerate(("meeting", "in_call", "in_email"))),
            Block("listen_event", 1, 2, 638, 730),
            Block("out_email", 2, 6, 365, 730),
        ),
        (Gratitude("trigger_any", 400, 700, 0.4, thanked=True),),
        filler_from=200,
        filler_weight=1.2,
    ),
    Persona(
        "friend",
        0.19,
        "Friend",
        (),
        20,
        OLDEST,
        (
            Block("conv", 1, 2, 1, 179),
            Block("out_email", 1, 1, 1, 89, 0.5),
            Block("listen", 1, 1, 90, 179, 0.2),  # 90 days old: just outside the listening window
            Block("out_email", 1, 2, 90, 179, 0.3),
            Block("history", 2, 6, 182, OLDEST, 0.4),
            Block("todo", 1, 1, -30, -1, 0.1),
        ),
    ),
    Persona(
        "friend_talked_at",
        0.03,
        "Friend",
        (_MISSING_LISTENING,),
        30,
        OLDEST,
        (
            Block("conv", 1, 2, 1, 179),
            Block("out_email", 4, 9, 1, 89),
            Block("out_call", 1, 3, 1, 89, 0.6),
        ),
    ),
    Persona(
        "friend_unthanked",
        0.02,
        "Friend",
        (_MISSING_THANK_YOU,),
        180,
        OLDEST,
        (
            Block("conv", 1, 2, 1, 179),
            Block("out_email", 1, 1, 1, 89, 0.5),
        ),
        (
            Gratitude("trigger_plain", 10, 170, 1.0, thanked=False),
            Gratitude("trigger_any", 200, OLDEST, 0.3, thanked=True),
        ),
    ),
    Persona(
        "friend_thanked",
        0.02,
        "Friend",
        (),
        180,
        OLDEST,
        (
            Block("conv", 1, 2, 1, 179),
            Block("out_email", 1, 1, 1, 89, 0.5),
        ),
        (Gratitude("trigger_plain", 10, 170, 1.0, thanked=True),),
    ),
    Persona(
        "familiar",
        0.14,
        "Familiar",
        (),
        100,
        OLDEST,
        (
            Block("conv", 3, 4, 1, 179),  # nothing two-way in quarter 2 (182..272 days ago): not Faithful
            Block("listen", 1, 2, 1, 89),
            Block("out_email", 1, 2, 1, 89, 0.7),
            Block("history", 2, 6, 273, OLDEST, 0.5),
            Block("todo", 1, 1, -30, -1, 0.2),
        ),
        (Gratitude("trigger_any", 8, 170, 0.3, thanked=True),),
        filler_weight=1.5,
    ),
    Persona(
        "familiar_unthanked",
        0.04,
        "Familiar",
        (_MISSING_THANK_YOU,),
        400,
        OLDEST,
        (
            *_FAITHFUL_CORE,  # meets Faithful's criteria but for the open flag
            *_quarters(3, 5, 0.5),
        ),
        (
            Gratitude("trigger_any", 10, 170, 1.0, thanked=False),
            Gratitude("trigger_any", 200, OLDEST, 0.5, thanked=True),
        ),
        filler_weight=2.0,
    ),
    Persona(
        "familiar_thanked",
        0.03,
        "Familiar",
        (),
        100,
        OLDEST,
        (
            Block("conv", 3, 4, 1, 179),
            Block("listen", 1, 2, 1, 89),
            Block("out_email", 1, 2, 1, 89, 0.7),
        ),
        (Gratitude("trigger_any", 10, 170, 1.0, thanked=True),),
        filler_weight=1.5,
    ),
    Persona(
        "faithful",
        0.13,
        "Faithful",
        (),
        400,
        OLDEST,
        (
            *_FAITHFUL_CORE,
            *_quarters(3, 5, 0.6),
            Block("advocacy", 1, 1, 400, OLDEST, 0.2),  # advocacy, but over a year ago: not Forever
            Block("history", 2, 6, 546, OLDEST, 0.6),
        ),
        (
            Gratitude("trigger_quiet", 8, 170, 0.5, thanked=True),  # a referral would be advocacy: Forever
            Gratitude("trigger_quiet", 200, OLDEST, 0.3, thanked=True),
            Gratitude("trigger_plain", 1, 5, 0.05, thanked=False),  # too recent to flag
        ),
        filler_weight=2.0,
    ),
    Persona(
        "forever",
        0.05,
        "Forever",
        (),
        760,
        OLDEST,
        (
            *_FAITHFUL_CORE,
            *_quarters(3, 5),
            Block("advocacy", 1, 1, 8, 364),
            Block("history", 3, 8, 546, OLDEST),
        ),
        (
            Gratitude("referral", 8, 300, 0.5, thanked=True),
            Gratitude("trigger_plain", 8, 170, 0.6, thanked=True),
            Gratitude("win", 8, 360, 0.4, thanked=True),
        ),
        filler_weight=2.5,
    ),
)

_PERSONA_P = np.array([p.weight for p in PERSONAS]) / sum(p.weight for p in PERSONAS)


def chunk_rng(seed: int, chunk: int) -> np.random.Generator:
    return np.random.default_rng([seed, chunk])


def draw_personas(rng: np.random.Generator, n: int) -> Ints:
    return rng.choice(len(PERSONAS), size=n, p=_PERSONA_P).astype(np.int64)
