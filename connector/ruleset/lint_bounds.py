"""The numeric bounds the linter reasons with: where a bound was written, intervals of values, what a feature's
type says about its range, and the comparisons of one feature with constants (atoms)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from connector.ruleset.compiler import RuleSet
from connector.ruleset.expr import Type
from connector.ruleset.loader import Loc


@dataclass(frozen=True)
class Where:
    """Where a bound was written: the condition's location, the offset in it, its text, and the rung it is on."""

    loc: Loc
    offset: int
    text: str
    rung: int | None = None


@dataclass(frozen=True)
class Bound:
    value: float
    strict: bool
    where: Where | None  # None: the feature's own range


@dataclass(frozen=True)
class Interval:
    """Values a feature may take: between `low` and `high`, each bound open when strict."""

    low: Bound = Bound(-math.inf, strict=False, where=None)
    high: Bound = Bound(math.inf, strict=False, where=None)

    def empty(self) -> bool:
        if self.low.value > self.high.value:
            return True
        return self.low.value == self.high.value and (self.low.strict or self.high.strict)

    def tighten(self, low: Bound | None, high: Bound | None) -> Interval:
        out = self
        if low is not None and tighter_low(low, out.low):
            out = replace(out, low=low)
        if high is not None and tighter_high(high, out.high):
            out = replace(out, high=high)
        return out

    def within(self, low: Bound | None, high: Bound | None) -> bool:
        """Every value here also meets `low` and `high`."""
        ok_low = low is None or not tighter_low(low, self.low)
        ok_high = high is None or not tighter_high(high, self.high)
        return ok_low and ok_high


def tighter_low(a: Bound, b: Bound) -> bool:
    return a.value > b.value or (a.value == b.value and a.strict and not b.strict)


def tighter_high(a: Bound, b: Bound) -> bool:
    return a.value < b.value or (a.value == b.value and a.strict and not b.strict)


@dataclass(frozen=True)
class Domain:
    """What a feature's type says about it: its range, whether it is whole, whether it may be empty (NULL)."""

    interval: Interval
    integer: bool
    nullable: bool
    what: str


@dataclass(frozen=True)
class Atom:
    """One comparison of a feature with constants, as bounds."""

    name: str
    low: Bound | None
    high: Bound | None
    where: Where


def domains(rules: RuleSet) -> dict[str, Domain]:
    """The numeric names a condition may compare, with what their type says about them."""
    anything = Interval()
    zero = Bound(0, strict=False, where=None)
    out: dict[str, Domain] = {}
    for name, f in rules.features.items():
        spec = f.spec
        if spec.type == "count":
            out[name] = Domain(Interval(low=zero), integer=True, nullable=False, what="a count (0 or more)")
        elif spec.type == "distinct_periods":
            n = spec.periods or 0
            out[name] = Domain(
                Interval(low=zero, high=Bound(n, strict=False, where=None)),
                integer=True,
                nullable=False,
                what=f"a number of periods from 0 to {n}",
            )
        elif spec.type == "ratio":
            out[name] = Domain(Interval(low=zero), integer=False, nullable=True, what="a ratio (0 or more, or empty)")
        elif f.type.numeric:
            out[name] = Domain(anything, integer=f.type == Type.INT, nullable=True, what="a number")
    n_flags = len(rules.flags)
    out["open_flags"] = Domain(
        Interval(low=zero, high=Bound(n_flags, strict=False, where=None)),
        integer=True,
        nullable=False,
        what=f"the number of open flags, from 0 to {n_flags}",
    )
    return out


def conflict_bound(before: Interval, atom: Atom) -> Bound | None:
    """The earlier bound that `atom` cannot live with."""
    if atom.low is not None and Interval(low=atom.low, high=before.high).empty():
        return before.high
    if atom.high is not None and Interval(low=before.low, high=atom.high).empty():
        return before.low
    return None


def conflict(before: Interval, atom: Atom) -> str:
    other = conflict_bound(before, atom)
    if other is None or other.where is None:
        return "the feature's range"
    return other.where.text
