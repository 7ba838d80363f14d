"""The rule-file format as pydantic models: the shape check. Meaning (names, types) is checked by the compiler."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connector.ruleset import words

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Limits that keep a rule file what it is meant to be: something a person reads, that `rules check` and a sync
# finish with quickly, in little memory. A file past them is refused with a message that names the limit.
MAX_DAYS = 36_500  # every day count: a hundred years
MAX_PERIODS = 520  # distinct_periods: ten years of weeks (and periods x period length is at most MAX_DAYS)
MAX_KINDS = 200
MAX_FEATURES = 500
MAX_RUNGS = 12
MAX_CRITERIA = 50  # per rung
MAX_FLAGS = 50
MAX_NAME = 64  # a kind, feature or flag name
MAX_CONDITION = 2000  # characters of a condition (match, when, expr)
# Subjects with these words are never cited on the Contact (its kind and date are): complaints, legal, health and
# personnel matters are not for everyone who can read the record.
NEVER_CITE = (
    "complaint",
    "legal",
    "lawsuit",
    "litigation",
    "attorney",
    "lawyer",
    "medical",
    "health",
    "diagnos",
    "hr ",
    "human resources",
    "harassment",
    "grievance",
    "disciplinary",
    "termination",
    "dismissal",
    "confidential",
    "private",
)
MAX_WORD_LISTS = 50
MAX_TEXT = 2000  # characters of a description, an explanation or a next-step text
PICKLIST_VALUE_MAX = 255  # rung names and flag labels become Salesforce picklist values: 255 characters at most


def _in_range(low: int, high: int, unit: str) -> Callable[[Any], Any]:
    """A range check that runs before pydantic's own (kept for the JSON Schema), to say it in plain words."""

    def check(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            shown = f"{value:,}" if abs(value) < 10**15 else "a number this large"
            raise ValueError(f"{shown} is out of range: use {low:,} to {high:,} {unit}")
        return value

    return check


Days = Annotated[int, Field(strict=True, ge=1, le=MAX_DAYS), BeforeValidator(_in_range(1, MAX_DAYS, "days"))]
DaysOrZero = Annotated[int, Field(strict=True, ge=0, le=MAX_DAYS), BeforeValidator(_in_range(0, MAX_DAYS, "days"))]
Periods = Annotated[
    int, Field(strict=True, ge=1, le=MAX_PERIODS), BeforeValidator(_in_range(1, MAX_PERIODS, "periods"))
]
Condition = Annotated[str, Field(max_length=MAX_CONDITION)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]


def _word_entry(value: str) -> str:
    try:
        words.check_entry(value)
    except words.WordError as exc:
        raise ValueError(str(exc)) from None
    return value


def _word_is_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError as a finding, a TypeError would escape
            f"YAML read this entry as {type(value).__name__} {value!r}: write it in quotes, like '1:1'"
        )
    return value


WordEntry = Annotated[
    str, Field(max_length=words.MAX_ENTRY * 2), BeforeValidator(_word_is_text), AfterValidator(_word_entry)
]
WordList = Annotated[list[WordEntry], Field(min_length=1, max_length=words.MAX_ENTRIES)]
KindList = Annotated[list[str], Field(min_length=1, max_length=MAX_KINDS)]


def _not_too_many(value: Any, limit: int, what: str) -> Any:
    """Count before validating each item, so a file with 20,000 kinds is refused at once and in little memory."""
    if isinstance(value, dict | list) and len(value) > limit:
        raise ValueError(f"{len(value):,} {what}: a rule file holds at most {limit:,}; merge or remove some")
    return value


def _kind_list(value: Any) -> Any:
    if isinstance(value, list) and not value:
        raise ValueError("name at least one activity kind here, e.g. [inbound_email]")
    return _not_too_many(value, MAX_KINDS, "kinds in one list")


def _picklist_value(value: str, what: str) -> str:
    """A rung name or flag label is a Salesforce picklist value: one line, no outer spaces, 255 characters."""
    if len(value) > PICKLIST_VALUE_MAX:
        raise ValueError(
            f"{what} is {len(value):,} characters long; it becomes a Salesforce picklist value, which "
            f"holds at most {PICKLIST_VALUE_MAX}"
        )
    if any(ch in value for ch in "\r\n\t"):
        raise ValueError(f"{what} must be one line of text (it becomes a picklist value)")
    if value != value.strip():
        raise ValueError(f"{what} must not start or end with a space (Salesforce trims picklist values)")
    return value


PERIOD_DAYS: dict[str, int] = {"week": 7, "month": 30, "quarter": 91, "year": 365}

FEATURE_TYPES = ("count", "first", "last", "distinct_periods", "ratio", "unanswered", "field", "expr")

# Which optional keys each feature type accepts.
_MODIFIERS: dict[str, set[str]] = {
    "count": {"within_days"},
    "first": {"within_days"},
    "last": {"within_days"},
    "distinct_periods": {"period", "periods"},
    "ratio": {"per", "within_days"},
    "unanswered": {"answered_by", "older_than_days", "within_days", "each_answer", "named_by"},
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

    demotion_grace_days: DaysOrZero = Field(
        default=30,
        description="A contact that stops meeting its rung keeps it this many days before it is demoted, "
        "so stages do not flap from one sync to the next.",
    )
    decay_every_days: Days | None = Field(
        default=90,
        description="After the grace period, a contact that stays below its rung drops one more rung every this "
        "many days (empty: drop straight to the rung it qualifies for).",
    )
    top_next_step: Text = Field(
        default="Keep listening and keep thanking",
        description="Next step for a contact on the top rung with no open flag; may cite {feature} placeholders.",
    )
    never_cite: list[Text] = Field(
        default_factory=lambda: list(NEVER_CITE),
        max_length=100,
        description="Words that keep a subject off the Contact record: an activity whose subject contains one "
        "(case-insensitive) is cited by its kind and date only, since anyone who can read the contact "
        "reads its next step.",
    )
    cite_private_events: bool = Field(
        default=False,
        description="Whether a private Event's subject may be cited on the Contact (by default: its kind and date).",
    )


class Kind(_Strict):
    """What a logged activity (Task or Event) means; one activity may be of several kinds."""

    description: Text = Field(default="", description="What this kind of activity means, for people.")
    label: str | None = Field(
        default=None,
        min_length=1,
        max_length=60,
        description="How a next step names an activity of this kind when its subject may not be shown, e.g. "
        "'feedback' ('Send a thank-you for the feedback on 2 Oct 2026'); default: the kind's name.",
    )
    match: Condition = Field(
        description="A condition over the activity's fields (object = 'Task'/'Event', Subject, Type, Status, "
        "TaskSubtype, EventSubtype, CallType, CallDurationInSeconds, CallDisposition, DurationInMinutes, "
        "IsAllDayEvent, IsClosed, WhatId, OwnerId, AccountId, Priority), e.g. "
        "\"TaskSubtype = 'Email' AND Subject LIKE 'Re:%'\"."
    )


class Feature(_Strict):
    """A number or date per contact, of exactly one type: count, first, last, ratio, expr and so on."""

    description: Text = Field(default="", description="What this feature measures, for people.")
    count: KindList | None = Field(
        default=None, description="How many activities of these kinds (within_days: only the last N days)."
    )
    first: KindList | None = Field(
        default=None,
        description="The earliest activity of these kinds (a date; templates may cite {name.date} and {name.subject}).",
    )
    last: KindList | None = Field(
        default=None,
        description="The latest activity of these kinds (a date; templates may cite {name.date} and {name.subject}).",
    )
    distinct_periods: KindList | None = Field(
        default=None,
        description="In how many of the last `periods` rolling periods an activity of these kinds "
        "happened (needs period and periods).",
    )
    ratio: KindList | None = Field(
        default=None,
        description="Activities of these kinds per activity of the `per` kinds; empty when the second count is 0.",
    )
    unanswered: KindList | None = Field(
        default=None,
        description="The oldest activity of these kinds, more than older_than_days old, with no "
        "answered_by activity on or after its day (a date; cite {name.date}, "
        "{name.subject}).",
    )
    field: Name | None = Field(default=None, description="A Contact field, e.g. FirstName or CreatedDate.")
    expr: Condition | None = Field(
        default=None,
        description="A calculation over other features and as_of, e.g. "
        "'as_of - LEAST(contact_since, COALESCE(first_conversation, contact_since))'.",
    )
    within_days: Days | None = Field(
        default=None,
        description="Only the last N days, including the evaluation day: an activity exactly N days old is outside.",
    )
    per: KindList | None = Field(default=None, description="For a ratio: the kinds counted in the denominator.")
    period: Literal["week", "month", "quarter", "year"] | None = Field(
        default=None, description="For distinct_periods: the period length (a quarter is 91 days)."
    )
    periods: Periods | None = Field(default=None, description="For distinct_periods: how many periods back.")
    answered_by: KindList | None = Field(
        default=None, description="For unanswered: the kinds that answer a trigger (e.g. a thank-you)."
    )
    older_than_days: DaysOrZero | None = Field(
        default=None, description="For unanswered: a trigger counts once it is more than this many days old."
    )
    each_answer: Literal["answers_all_before", "answers_oldest"] | None = Field(
        default=None,
        description="For unanswered: what one answering activity answers. answers_all_before (the default): every "
        "trigger on or before its day. answers_oldest: one trigger, the oldest not yet answered on or before its "
        "day, so a thank-you answers one input and the others stay open.",
    )
    named_by: dict[str, KindList] | None = Field(
        default=None,
        description="For unanswered with each_answer: answers_oldest: per trigger kind, the kinds of an answer that "
        "names it (a thank-you 'for the referral'). An answer of one of them answers only triggers of the kinds it "
        "names; one that names none answers any. Either way an answer first answers the trigger it refers to (a "
        "reply to its email, a reply in the same thread, the same related record), then the oldest open one.",
    )

    @model_validator(mode="after")
    def _one_type(self) -> Feature:
        given = [t for t in FEATURE_TYPES if getattr(self, t) is not None]
        if len(given) != 1:
            raise ValueError(
                "a feature needs exactly one of "
                + ", ".join(FEATURE_TYPES)
                + (f" (this one has {', '.join(given)})" if given else "")
            )
        kind = given[0]
        modifiers = {
            "within_days",
            "per",
            "period",
            "periods",
            "answered_by",
            "older_than_days",
            "each_answer",
            "named_by",
        }
        extra = sorted(m for m in modifiers if getattr(self, m) is not None and m not in _MODIFIERS[kind])
        if extra:
            raise ValueError(f"'{kind}' does not take {', '.join(extra)}")
        missing = sorted(m for m in _REQUIRED.get(kind, set()) if getattr(self, m) is None)
        if missing:
            raise ValueError(f"'{kind}' needs {', '.join(missing)}")
        if self.named_by is not None and not self.answers_oldest:
            raise ValueError("named_by needs each_answer: answers_oldest (one answer answers one trigger)")
        if self.period is not None and self.periods is not None:
            days = PERIOD_DAYS[self.period] * self.periods
            if days > MAX_DAYS:
                raise ValueError(
                    f"{self.periods} periods of a {self.period} reach {days:,} days back; at most "
                    f"{MAX_DAYS:,} (a hundred years)"
                )
        return self

    @field_validator(
        "count", "first", "last", "distinct_periods", "ratio", "unanswered", "per", "answered_by", mode="before"
    )
    @classmethod
    def _kinds_given(cls, value: Any) -> Any:
        return _kind_list(value)

    @property
    def type(self) -> str:
        return next(t for t in FEATURE_TYPES if getattr(self, t) is not None)

    @property
    def answers_oldest(self) -> bool:
        """An answer answers one trigger (the oldest open one), not every trigger before it."""
        return self.each_answer == "answers_oldest"

    @property
    def kinds(self) -> list[str]:
        """Every activity kind this feature reads."""
        out: list[str] = []
        for attr in ("count", "first", "last", "distinct_periods", "ratio", "unanswered", "per", "answered_by"):
            out.extend(getattr(self, attr) or [])
        for naming in (self.named_by or {}).values():
            out.extend(naming)
        return out


class Criterion(_Strict):
    """One condition a contact must meet to stand on a rung."""

    when: Condition = Field(
        description="A condition over features, open_flags, flag ids and as_of, e.g. 'conversations_180d >= 3'."
    )
    says: Text = Field(default="", description="The criterion in plain words; shown in the reason on the Contact.")


class Rung(_Strict):
    """One rung of the ladder, lowest first. Rungs are cumulative: a rung needs its criteria and those below."""

    name: str = Field(
        min_length=1,
        max_length=PICKLIST_VALUE_MAX,
        description="The rung's name: a value of the stage picklist on the Contact.",
    )
    means: Text = Field(default="", description="What standing on this rung means, in plain words.")
    next_step: Text | None = Field(
        default=None, description="Advice shown one rung below when no flag is open; may cite {feature} placeholders."
    )
    keep_step: Text | None = Field(
        default=None,
        description="What a contact held on this rung by the demotion grace period is told to do, first on the "
        "record after 'To stay <rung> past <day>: ', before what is slipping; may cite {feature} placeholders "
        "(without one: what to restore).",
    )
    requires: list[Criterion] = Field(
        default_factory=list, max_length=MAX_CRITERIA, description="The criteria, all needed; the lowest rung has none."
    )

    @field_validator("name", mode="before")
    @classmethod
    def _name_is_a_picklist_value(cls, value: Any) -> Any:
        return _picklist_value(value, "a rung name") if isinstance(value, str) else value

    @field_validator("requires", mode="before")
    @classmethod
    def _few_criteria(cls, value: Any) -> Any:
        return _not_too_many(value, MAX_CRITERIA, "criteria on one rung")


class Flag(_Strict):
    """A missing human step, in priority order: the first open flag gives the contact's next step."""

    id: Name = Field(description="Lower case letters, digits and _, e.g. missing_thank_you; usable in criteria.")
    label: str = Field(
        min_length=1,
        max_length=PICKLIST_VALUE_MAX,
        description="The value of the flags multi-select picklist on the Contact.",
    )
    when: Condition = Field(description="The condition that raises the flag, over features and as_of.")
    says: Text = Field(default="", description="Why the flag is raised, in plain words.")
    next_step: Text = Field(
        description="What to do about it; may cite {feature} and {feature.date|subject} placeholders."
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("a flag id is lower case letters, digits and _ (like missing_thank_you)")
        return v

    @field_validator("label", mode="before")
    @classmethod
    def _label_is_a_picklist_value(cls, value: Any) -> Any:
        return _picklist_value(value, "a flag label") if isinstance(value, str) else value


MAX_OUTCOMES = 20
OUTCOME_TYPES = ("won_opportunity", "activity", "no_activity", "contact_gone")
# A Contact field's API name: a standard field (IsEmailBounced) or a custom one (Inactive__c), never a path.
_CONTACT_FIELD = r"^[A-Za-z](?:_?[A-Za-z0-9])*(?:__c)?$"


class ContactGone(_Strict):
    """The contact gone: its email bounced (Salesforce's bounce management sets Contact.IsEmailBounced and
    EmailBouncedDate), or marked inactive by a field the org keeps for it. Salesforce has no standard "inactive"
    on Contact, so the rule file names the field and the value that means gone."""

    email_bounced: bool = Field(
        default=True, description="A bounced email counts (IsEmailBounced; the day is EmailBouncedDate)."
    )
    inactive_field: str | None = Field(
        default=None,
        max_length=80,
        description="A Contact field that marks the contact inactive or gone (e.g. Inactive__c, "
        "No_Longer_With_Company__c, Contact_Status__c).",
    )
    inactive_value: bool | Annotated[str, Field(min_length=1, max_length=255)] = Field(
        default=True, description="The value of inactive_field that means gone (true for a checkbox)."
    )
    inactive_since_field: str | None = Field(
        default=None,
        max_length=80,
        description="A Contact date field holding the day the contact was marked inactive (e.g. Inactive_Date__c).",
    )

    @field_validator("inactive_field", "inactive_since_field")
    @classmethod
    def _api_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(_CONTACT_FIELD, value):
            raise ValueError(f"'{value}' is not a Contact field's API name (like Inactive__c or Contact_Status__c)")
        return value

    @model_validator(mode="after")
    def _something_counts(self) -> ContactGone:
        if not self.email_bounced and self.inactive_field is None:
            raise ValueError("contact_gone needs email_bounced: true or an inactive_field (or both)")
        if self.inactive_since_field is not None and self.inactive_field is None:
            raise ValueError("inactive_since_field goes with inactive_field")
        return self


class Outcome(_Strict):
    """What happened after a day D, good or bad, within a horizon: what `calibrate` measures each rung against.

    Exactly one of: a won opportunity the contact was a contact role on (optionally of some Opportunity Types,
    e.g. a renewal), an activity of some kinds (a referral they gave, a reply), or none of some kinds (no two-way
    conversation). Outcomes change no rung, flag or field: they only calibrate the ladder."""

    good: bool = Field(description="true: a good outcome (a higher rung should see more of it); false: a bad one.")
    says: Text = Field(default="", description="The outcome in plain words, for the calibration table.")
    won_opportunity: bool | None = Field(
        default=None,
        description="A won Opportunity (IsWon) the contact was a contact role on (OpportunityContactRole), "
        "closed within the horizon.",
    )
    opportunity_types: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(
        default=None,
        max_length=50,
        description="With won_opportunity: only Opportunities of these Types (e.g. [Renewal]).",
    )
    activity: KindList | None = Field(
        default=None, description="An activity of these kinds within the horizon (e.g. [referral], [inbound_email])."
    )
    no_activity: KindList | None = Field(
        default=None,
        description="No activity of these kinds within the horizon (e.g. no two-way conversation for 180 days).",
    )
    contact_gone: ContactGone | None = Field(
        default=None,
        description="The contact gone within the horizon: email bounced, or marked inactive (a bad outcome).",
    )
    horizon_days: Days = Field(
        default=180, description="How many days after D the outcome is looked for (D itself excluded)."
    )

    @model_validator(mode="after")
    def _one_type(self) -> Outcome:
        given = [t for t in OUTCOME_TYPES if getattr(self, t) not in (None, False)]
        if len(given) != 1:
            raise ValueError(
                "an outcome needs exactly one of "
                + ", ".join(OUTCOME_TYPES)
                + (f" (this one has {', '.join(given)})" if given else "")
            )
        if self.opportunity_types is not None and given[0] != "won_opportunity":
            raise ValueError("opportunity_types goes with won_opportunity: true")
        return self

    @field_validator("activity", "no_activity", mode="before")
    @classmethod
    def _kinds_given(cls, value: Any) -> Any:
        return _kind_list(value)

    @property
    def type(self) -> str:
        return next(t for t in OUTCOME_TYPES if getattr(self, t) not in (None, False))

    @property
    def kinds(self) -> list[str]:
        return [*(self.activity or []), *(self.no_activity or [])]


class RuleFile(_Strict):
    """A trust-ladder rule file: activity kinds, per-contact features, rungs (lowest first) and flags."""

    name: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The rule set's name; with a content hash it is the rules version on each Contact.",
    )
    description: Text = Field(default="", description="What this rule set is for, for people.")
    ladder: LadderSettings = Field(
        default_factory=LadderSettings, description="Promotion, demotion and decay settings."
    )
    words: dict[Name, WordList] = Field(
        default_factory=dict,
        max_length=MAX_WORD_LISTS,
        description="Word lists by name, for MENTIONS(list, Subject, Description) in a kind's match: whole words, "
        "case-insensitive, with their regular inflections (hear: hears, heard, hearing); a phrase matches with "
        "any spaces or punctuation between its words; 'introduc*' matches words that start so.",
    )
    kinds: dict[Name, Kind] = Field(
        max_length=MAX_KINDS, description="Activity kinds by name (lower case letters, digits and _)."
    )
    features: dict[Name, Feature] = Field(
        max_length=MAX_FEATURES, description="Per-contact features by name (lower case letters, digits and _)."
    )
    rungs: list[Rung] = Field(min_length=2, max_length=MAX_RUNGS, description="The rungs, lowest first.")
    flags: list[Flag] = Field(default_factory=list, max_length=MAX_FLAGS, description="The flags, in priority order.")
    outcomes: dict[Name, Outcome] = Field(
        default_factory=dict,
        max_length=MAX_OUTCOMES,
        description="What happened next, good or bad, by name: `trust-ladder calibrate` measures each rung "
        "against them. They change no rung or flag.",
    )

    @field_validator("words")
    @classmethod
    def _word_list_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if not NAME_RE.match(name):
                raise ValueError(f"word list name '{name}': use lower case letters, digits and _")
        return value

    @field_validator("kinds", "features", "rungs", "flags", "outcomes", mode="before")
    @classmethod
    def _few_enough(cls, value: Any, info: ValidationInfo) -> Any:
        limits = {
            "kinds": MAX_KINDS,
            "features": MAX_FEATURES,
            "rungs": MAX_RUNGS,
            "flags": MAX_FLAGS,
            "outcomes": MAX_OUTCOMES,
        }
        assert info.field_name is not None
        return _not_too_many(value, limits[info.field_name], info.field_name)
