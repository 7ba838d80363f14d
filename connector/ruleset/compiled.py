"""The compiled form of a rule file: typed trees and texts the engine assembles into its passes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from connector import sql
from connector.crm import RuleNeeds
from connector.ruleset import loader
from connector.ruleset.expr import Compiled, Type
from connector.ruleset.schema import Feature, LadderSettings

# Names a condition already means something by: a feature or flag under one of them could never be read (`true IS
# NOT NULL` is the constant, not the feature), so it is refused rather than silently shadowed.


@dataclass(frozen=True)
class Template:
    """A next-step text with {feature}, {feature.date|subject} and {feature|fallback} placeholders.

    The fallback is written when the value is empty ("invite {first_name|them} to a call"), so a Contact never
    shows a placeholder's hole to a salesperson.
    """

    text: str
    parts: tuple[tuple[str, str | None, str | None, str | None], ...]  # (literal, feature, attribute, fallback)
    loc: loader.Loc = ()  # where the text stands in the rule file
    offsets: tuple[int, ...] = ()  # where each part's placeholder starts in the text

    @property
    def names(self) -> list[str]:
        return [n for _, n, _, _ in self.parts if n]


@dataclass(frozen=True)
class CompiledKind:
    name: str
    description: str
    match: str
    expr: exp.Expr
    fields: list[str]
    label: str = ""  # how a next step names an activity of this kind when it may not cite its subject
    word_lists: tuple[str, ...] = ()  # the `words:` lists its match reads through MENTIONS()


@dataclass(frozen=True)
class CompiledFeature:
    name: str
    spec: Feature
    type: Type
    description: str
    expr: Compiled | None = None

    @property
    def cites_activity(self) -> bool:
        return self.spec.type in ("first", "last", "unanswered")


@dataclass(frozen=True)
class CompiledCriterion:
    when: str
    says: str
    compiled: Compiled


@dataclass(frozen=True)
class CompiledRung:
    index: int
    name: str
    means: str
    next_step: Template | None
    criteria: list[CompiledCriterion]
    keep_step: Template | None = None


@dataclass(frozen=True)
class CompiledFlag:
    id: str
    label: str
    when: str
    says: str
    compiled: Compiled
    next_step: Template


@dataclass(frozen=True)
class Gone:
    """A contact_gone outcome's Contact fields (schema.ContactGone)."""

    email_bounced: bool
    inactive_field: str | None = None
    inactive_value: str = "true"  # compared with the field's value as text ('true' for a checkbox)
    inactive_since_field: str | None = None

    def fields(self) -> tuple[str, ...]:
        """The Contact fields it reads, bounce fields first."""
        out = BOUNCE_FIELDS if self.email_bounced else ()
        return out + tuple(f for f in (self.inactive_field, self.inactive_since_field) if f)


# Salesforce's bounce management on Contact: IsEmailBounced (boolean), EmailBouncedDate (dateTime) and
# EmailBouncedReason (string) (Object Reference for the Salesforce Platform, "Contact").
BOUNCE_FIELDS = ("IsEmailBounced", "EmailBouncedDate")


@dataclass(frozen=True)
class CompiledOutcome:
    """An outcome of the rule file (schema.Outcome), checked: its kinds exist."""

    name: str
    good: bool
    says: str
    type: str  # won_opportunity, activity or no_activity
    kinds: tuple[str, ...] = ()
    opportunity_types: tuple[str, ...] | None = None
    horizon_days: int = 180
    loc: loader.Loc = ()
    gone: Gone | None = None  # contact_gone: the fields that say so


@dataclass
class RuleSet:
    name: str
    version: str
    path: str
    settings: LadderSettings
    kinds: dict[str, CompiledKind]
    features: dict[str, CompiledFeature]  # in dependency order
    rungs: list[CompiledRung]
    flags: list[CompiledFlag]
    top_next_step: Template
    source: loader.Located = field(repr=False)
    outcomes: list[CompiledOutcome] = field(default_factory=list)  # what calibrate measures; no rung reads them
    # The DuckDB passes' statements for these rules, built and rendered once (connector.sql.Memo).
    memo: sql.Memo = field(default_factory=sql.Memo, init=False, repr=False, compare=False)

    def rung_index(self, name: str) -> int | None:
        for rung in self.rungs:
            if rung.name == name:
                return rung.index
        return None

    def needs(self) -> RuleNeeds:
        """What a CRM backend must know of these rules (connector.crm.RuleNeeds), and nothing more."""
        return RuleNeeds(
            contact_fields=tuple(
                f.spec.field for f in self.features.values() if f.spec.type == "field" and f.spec.field
            ),
            activity_fields=tuple(self.used_activity_fields()),
            stages=tuple(r.name for r in self.rungs),
            flag_labels=tuple(f.label for f in self.flags),
            opportunities=any(o.type == "won_opportunity" for o in self.outcomes),
            gone_fields=tuple(dict.fromkeys(f for o in self.outcomes if o.gone for f in o.gone.fields())),
        )

    def used_activity_fields(self) -> list[str]:
        seen: list[str] = []
        for kind in self.kinds.values():
            for f in kind.fields:
                if f not in seen:
                    seen.append(f)
        return seen
