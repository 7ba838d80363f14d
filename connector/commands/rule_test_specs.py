"""The schema of a rule test file: its cases, each a contact, its activities, what the CRM and the demotion watch
show today, and the rung and flags expected (pydantic, so unknown keys and wrong types are findings)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connector import vocabulary

DEFAULT_RULES = "../ladder.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActivitySpec(_Strict):
    """One logged Task or Event of the case's contact, dated `days_ago` before as_of (or on `date`): its
    ActivityDate, the day it happened. Beside the Salesforce fields it can say what Salesforce records elsewhere:
    `incoming` (an EmailMessage of that direction; `answers_ours`: it replies to one of ours; `replies_to: n`: it
    replies to the email that is the case's n-th activity, in the same thread), `with` (the
    contacts of other cases of the file who took part too) or `attendees` (that many more people), `declined`
    (this contact declined the Event), `private` (IsPrivate), `logged_days_ago` (when it was logged: CreatedDate,
    and for a Task its CompletedDateTime). A cancelled meeting is a subject: "Canceled: ..."."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    days_ago: int | None = None
    date: dt.date | None = None
    kind_hint: str | list[str] | None = None  # the kinds it is meant to be; the case fails when it is not
    not_kind: str | list[str] | None = None  # kinds it must not be (a misleading subject); fails when it is one
    object: Literal["Task", "Event"] = "Task"
    incoming: bool | None = None
    answers_ours: bool | None = None
    replies_to: int | None = Field(default=None, ge=1)  # the case's n-th activity (from 1), an email listed before
    with_: list[str] = Field(default_factory=list, alias="with")
    attendees: int | None = Field(default=None, ge=0, le=1000)  # more people (new contacts) on the activity
    declined: bool = False
    private: bool | None = None
    logged_days_ago: int | None = Field(default=None, ge=0)
    IsPrivate: bool | None = None
    Subject: str | None = None
    Type: str | None = None
    Status: str | None = None
    Priority: str | None = None
    TaskSubtype: str | None = None
    EventSubtype: str | None = None
    CallType: str | None = None
    CallDurationInSeconds: int | None = None
    CallDisposition: str | None = None
    Description: str | None = None  # the call or meeting notes
    Trust_Listening__c: bool | None = None  # the rep's word: it was (not) listening
    DurationInMinutes: int | None = None
    IsAllDayEvent: bool | None = None
    IsClosed: bool | None = None
    WhatId: str | None = None
    OwnerId: str | None = None
    AccountId: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ActivitySpec:
        if (self.days_ago is None) == (self.date is None):
            raise ValueError("give exactly one of days_ago or date")
        have = set(vocabulary.column_names(self.object))
        wrong = sorted(k for k in self.model_fields_set if k[0].isupper() and k not in have)
        if wrong:
            raise ValueError(f"{self.object} has no field {', '.join(wrong)}")
        if self.object == "Event" and self.incoming is not None:
            raise ValueError("incoming is an email's direction: give it on a Task")
        if self.replies_to is not None and self.incoming is None:
            raise ValueError("replies_to is an email's: give incoming (its direction) too")
        if self.replies_to is not None and self.answers_ours is not None:
            raise ValueError("give replies_to or answers_ours, not both: replying to one of ours answers ours")
        if self.answers_ours and not self.incoming:
            raise ValueError("answers_ours needs incoming: true (only their email answers ours)")
        if self.declined and self.object != "Event":
            raise ValueError("declined is an Event invitation's answer: give it on an Event")
        if self.private is not None and self.object != "Event":
            raise ValueError("private is an Event's: give it on an Event")
        return self

    @property
    def hints(self) -> list[str]:
        if self.kind_hint is None:
            return []
        return [self.kind_hint] if isinstance(self.kind_hint, str) else list(self.kind_hint)

    @property
    def not_kinds(self) -> list[str]:
        if self.not_kind is None:
            return []
        return [self.not_kind] if isinstance(self.not_kind, str) else list(self.not_kind)

    def fields(self) -> dict[str, Any]:
        """The Salesforce fields given, by API name."""
        out = {k: getattr(self, k) for k in sorted(self.model_fields_set) if k[0].isupper()}
        if self.private is not None:
            out["IsPrivate"] = self.private
        return out


class ContactSpec(_Strict):
    """The case's contact. Its CreatedDate is `known_for_days` before as_of (default 100) unless given."""

    FirstName: str | None = "Alex"  # null: a contact without a first name, as Salesforce allows
    LastName: str = "Tester"
    known_for_days: int | None = Field(default=None, ge=0)
    CreatedDate: dt.datetime | dt.date | None = None
    Email: str | None = None
    Title: str | None = None
    AccountId: str | None = None
    OwnerId: str | None = None
    LeadSource: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ContactSpec:
        if self.known_for_days is not None and self.CreatedDate is not None:
            raise ValueError("give known_for_days or CreatedDate, not both")
        return self


class CrmSpec(_Strict):
    """What the CRM shows today, before this sync."""

    Trust_Stage__c: str | None = None
    Trust_Stage_Since__c: dt.date | None = None


class StateSpec(_Strict):
    """The demotion watch earlier releases read (refused now with a message: a hold comes from the history)."""

    demotion_from: str
    failing_since: dt.date | None = None
    failing_for_days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _check(self) -> StateSpec:
        if (self.failing_since is None) == (self.failing_for_days is None):
            raise ValueError("give exactly one of failing_since or failing_for_days")
        return self


class ExpectSpec(_Strict):
    rung: str | None = None
    qualifies: str | None = None  # the rung it meets today, before the demotion grace holds it higher
    flags: list[str] | None = None  # ids or labels; exactly these are open
    next_step: str | None = None
    next_step_contains: str | None = None
    since: dt.date | None = None  # the day it reached the rung it stands on (its history, not the sync day)
    held_until: dt.date | Literal["none"] | None = None  # the day a held rung drops if nothing happens; "none"
    flag_since: dict[str, dt.date] | None = None  # flag id or label -> the day it opened

    @model_validator(mode="after")
    def _check(self) -> ExpectSpec:
        if not self.model_fields_set:
            raise ValueError(
                "expect at least one of rung, qualifies, flags, next_step, next_step_contains, since, held_until, "
                "flag_since"
            )
        return self


class CaseSpec(_Strict):
    name: str = Field(min_length=1)
    contact: ContactSpec = Field(default_factory=ContactSpec)
    activities: list[ActivitySpec] = Field(default_factory=list)
    crm: CrmSpec | None = None
    state: StateSpec | None = None
    expect: ExpectSpec


class RuleTestFile(_Strict):
    rules: str = DEFAULT_RULES  # relative to this file
    as_of: dt.date | None = None  # default: today
    cases: list[CaseSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> RuleTestFile:
        names = [c.name for c in self.cases]
        for case in self.cases:
            for act in case.activities:
                unknown = [n for n in act.with_ if n not in names or n == case.name]
                if unknown:
                    raise ValueError(
                        f"case '{case.name}': an activity is `with` {', '.join(unknown)}, which is not "
                        f"another case of this file ({', '.join(names)})"
                    )
        return self
