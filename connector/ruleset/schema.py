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
    """How contacts move between rungs over time."""

    demotion_grace_days: int = Field(
        default=30, ge=0,
        description="A contact that stops meeting its rung keeps it this many days before it is demoted, "
                    "so stages do not flap from one sync to the next.")
    decay_every_days: int | None = Field(
        default=90, ge=1,
        description="After the grace period, a contact that stays below its rung drops one more rung every this "
                    "many days (empty: drop straight to the rung it qualifies for).")
    top_next_step: str = Field(
        default="Keep listening and keep thanking",
        description="Next step for a contact on the top rung with no open flag; may cite {feature} placeholders.")


class Kind(_Strict):
    """What a logged activity (Task or Event) means; one activity may be of several kinds."""

    description: str = Field(default="", description="What this kind of activity means, for people.")
    match: str = Field(
        description="A condition over the activity's fields (object = 'Task'/'Event', Subject, Type, Status, "
                    "TaskSubtype, EventSubtype, CallType, CallDurationInSeconds, CallDisposition, DurationInMinutes, "
                    "IsAllDayEvent, IsClosed, WhatId, OwnerId, AccountId, Priority), e.g. "
                    "\"TaskSubtype = 'Email' AND Subject LIKE 'Re:%'\".")


class Feature(_Strict):
    """A number or date per contact, of exactly one type: count, first, last, ratio, expr and so on."""

    description: str = Field(default="", description="What this feature measures, for people.")
    count: list[str] | None = Field(
        default=None, description="How many activities of these kinds (within_days: only the last N days).")
    first: list[str] | None = Field(
        default=None, description="The earliest activity of these kinds (a date; templates may cite {name.date} "
                                  "and {name.subject}).")
    last: list[str] | None = Field(
        default=None, description="The latest activity of these kinds (a date; templates may cite {name.date} "
                                  "and {name.subject}).")
    distinct_periods: list[str] | None = Field(
        default=None, description="In how many of the last `periods` rolling periods an activity of these kinds "
                                  "happened (needs period and periods).")
    ratio: list[str] | None = Field(
        default=None, description="Activities of these kinds per activity of the `per` kinds; empty when the "
                                  "second count is 0.")
    unanswered: list[str] | None = Field(
        default=None, description="The oldest activity of these kinds, more than older_than_days old, with no "
                                  "answered_by activity on or after its day (a date; cite {name.date}, "
                                  "{name.subject}).")
    field: str | None = Field(default=None, description="A Contact field, e.g. FirstName or CreatedDate.")
    expr: str | None = Field(
        default=None, description="A calculation over other features and as_of, e.g. "
                                  "'as_of - LEAST(contact_since, COALESCE(first_conversation, contact_since))'.")
    within_days: int | None = Field(
        default=None, ge=1,
        description="Only the last N days, including the evaluation day: an activity exactly N days old is outside.")
    per: list[str] | None = Field(default=None, description="For a ratio: the kinds counted in the denominator.")
    period: Literal["week", "month", "quarter", "year"] | None = Field(
        default=None, description="For distinct_periods: the period length (a quarter is 91 days).")
    periods: int | None = Field(default=None, ge=1, description="For distinct_periods: how many periods back.")
    answered_by: list[str] | None = Field(
        default=None, description="For unanswered: the kinds that answer a trigger (e.g. a thank-you).")
    older_than_days: int | None = Field(
        default=None, ge=0, description="For unanswered: a trigger counts once it is more than this many days old.")

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
    """One condition a contact must meet to stand on a rung."""

    when: str = Field(description="A condition over features, open_flags, flag ids and as_of, "
                                  "e.g. 'conversations_180d >= 3'.")
    says: str = Field(default="", description="The criterion in plain words; shown in the reason on the Contact.")


class Rung(_Strict):
    """One rung of the ladder, lowest first. Rungs are cumulative: a rung needs its criteria and those below."""

    name: str = Field(min_length=1, max_length=255,
                      description="The rung's name: a value of the stage picklist on the Contact.")
    means: str = Field(default="", description="What standing on this rung means, in plain words.")
    next_step: str | None = Field(
        default=None, description="Advice shown one rung below when no flag is open; may cite {feature} "
                                  "placeholders.")
    requires: list[Criterion] = Field(
        default_factory=list, description="The criteria, all needed; the lowest rung has none.")


class Flag(_Strict):
    """A missing human step, in priority order: the first open flag gives the contact's next step."""

    id: str = Field(description="Lower case letters, digits and _, e.g. missing_thank_you; usable in criteria.")
    label: str = Field(min_length=1, description="The value of the flags multi-select picklist on the Contact.")
    when: str = Field(description="The condition that raises the flag, over features and as_of.")
    says: str = Field(default="", description="Why the flag is raised, in plain words.")
    next_step: str = Field(description="What to do about it; may cite {feature} and {feature.date|subject} "
                                       "placeholders.")

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("a flag id is lower case letters, digits and _ (like missing_thank_you)")
        return v


class RuleFile(_Strict):
    """A trust-ladder rule file: activity kinds, per-contact features, rungs (lowest first) and flags."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="The rule set's name; with a content hash it is the rules version on each "
                                  "Contact.")
    description: str = Field(default="", description="What this rule set is for, for people.")
    ladder: LadderSettings = Field(default_factory=LadderSettings,
                                   description="Promotion, demotion and decay settings.")
    kinds: dict[str, Kind] = Field(description="Activity kinds by name (lower case letters, digits and _).")
    features: dict[str, Feature] = Field(description="Per-contact features by name (lower case letters, digits "
                                                     "and _).")
    rungs: list[Rung] = Field(min_length=2, description="The rungs, lowest first.")
    flags: list[Flag] = Field(default_factory=list, description="The flags, in priority order.")
