"""The rule-file format as pydantic models: the shape check. Meaning (names, types) is checked by the compiler."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

PERIOD_DAYS: dict[str, int] = {"week": 7, "month": 30, "quarter": 91, "year": 365}

FEATURE_TYPES = ("count", "first", "last", "distinct_periods", "ratio", "unanswered", "field", "expr")

# Which optional keys each feature type accepts.
_MODIFIERS: dict[str, set[str]] = {
    "count": {"within_days"},
    "first": {"within_days"},
    "last": {"within_days"},
    "distinct_periods": {"period", "periods"},
    "ratio": {"per", "within_days"},
    "unanswered": {"answered_by", "older_than_days", "within_days"},
    "field": set(),
    "expr": set(),
}
_REQUIRED: dict[str, set[str]] = {
    "distinct_periods": {"period", "periods"},
    "ratio": {"per"},
    "unanswered": {"answered_by", "older_than_days"},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LadderSettings(_Strict):
    demotion_grace_days: int = Field(default=30, ge=0)
    decay_every_days: int | None = Field(default=90, ge=1)
    top_next_step: str = "Keep listening and keep thanking"


class Kind(_Strict):
    description: str = ""
    match: str


class Feature(_Strict):
    description: str = ""
    count: list[str] | None = None
    first: list[str] | None = None
    last: list[str] | None = None
    distinct_periods: list[str] | None = None
    ratio: list[str] | None = None
    unanswered: list[str] | None = None
    field: str | None = None
    expr: str | None = None
    within_days: int | None = Field(default=None, ge=1)
    per: list[str] | None = None
    period: Literal["week", "month", "quarter", "year"] | None = None
    periods: int | None = Field(default=None, ge=1)
    answered_by: list[str] | None = None
    older_than_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_type(self) -> Feature:
        given = [t for t in FEATURE_TYPES if getattr(self, t) is not None]
        if len(given) != 1:
            raise ValueError(
                "a feature needs exactly one of " + ", ".join(FEATURE_TYPES)
                + (f" (this one has {', '.join(given)})" if given else "")
            )
        kind = given[0]
        modifiers = {"within_days", "per", "period", "periods", "answered_by", "older_than_days"}
        extra = sorted(m for m in modifiers if getattr(self, m) is not None and m not in _MODIFIERS[kind])
        if extra:
            raise ValueError(f"'{kind}' does not take {', '.join(extra)}")
        missing = sorted(m for m in _REQUIRED.get(kind, set()) if getattr(self, m) is None)
        if missing:
            raise ValueError(f"'{kind}' needs {', '.join(missing)}")
        return self

    @property
    def type(self) -> str:
        return next(t for t in FEATURE_TYPES if getattr(self, t) is not None)

    @property
    def kinds(self) -> list[str]:
        """Every activity kind this feature reads."""
        out: list[str] = []
        for attr in ("count", "first", "last", "distinct_periods", "ratio", "unanswered", "per", "answered_by"):
            out.extend(getattr(self, attr) or [])
        return out


class Criterion(_Strict):
    when: str
    says: str = ""


class Rung(_Strict):
    name: str = Field(min_length=1, max_length=255)
    means: str = ""
    next_step: str | None = None
    requires: list[Criterion] = Field(default_factory=list)


class Flag(_Strict):
    id: str
    label: str = Field(min_length=1)
    when: str
    says: str = ""
    next_step: str

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("a flag id is lower case letters, digits and _ (like missing_thank_you)")
        return v


class RuleFile(_Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    ladder: LadderSettings = Field(default_factory=LadderSettings)
    kinds: dict[str, Kind]
    features: dict[str, Feature]
    rungs: list[Rung] = Field(min_length=2)
    flags: list[Flag] = Field(default_factory=list)
