"""Days before the evaluation date: uniform draws of them, and timestamps on them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]
    Times = npt.NDArray[np.datetime64]

US_PER_S = 1_000_000


def offsets(rng: np.random.Generator, newest: int, oldest: Ints) -> Ints:
    """Uniform whole days in newest..oldest (per row)."""
    span = oldest - newest + 1
    return newest + (rng.random(len(oldest)) * span).astype(np.int64)


def timestamps(as_of: dt.date, days_ago: Ints, seconds: Ints) -> Times:
    """Timestamps `days_ago` days before midnight of `as_of`, plus `seconds` into that day."""
    out: Times = np.datetime64(as_of.isoformat(), "us") + (seconds - days_ago * 86_400).astype("timedelta64[s]")
    return out
