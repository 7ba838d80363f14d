"""Each pass's output, declared once: its name and its columns with their types.

Two namespaces meet in these relations and can never collide. The engine's own columns (`cid`, `final`,
`new_stage`, ...) never start with a rule prefix; every name from a rule file is a column with the prefix of what it
is (`k_` kind, `f_` feature, `g_` flag, `c_` criterion). Rule names are lower-case letters, digits and `_`, so
`f_final` can never be the engine's `final`, and a feature named `x_act` is `f_x_act`, never the `fs_x` subject of
feature `x`. explain, simulate and the rule tests read columns through these functions, never by spelling them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from connector import sql

RULE_PREFIXES = ("k_", "f_", "fs_", "fi_", "fp_", "fk_", "fa_", "fx_", "g_", "gs_", "c_")


def kind_col(name: str) -> str:
    return f"k_{name}"


def feature_col(name: str) -> str:
    return f"f_{name}"


def feature_subject_col(name: str) -> str:
    """The cited activity's subject, for a first/last/unanswered feature."""
    return f"fs_{name}"


def feature_id_col(name: str) -> str:
    """The cited activity's Id, for a first/last/unanswered feature."""
    return f"fi_{name}"


def feature_private_col(name: str) -> str:
    """Whether the cited activity is private (a private Event): then its subject is never cited."""
    return f"fp_{name}"


def feature_kind_col(name: str) -> str:
    """How a next step names the cited activity when its subject may not be shown: its kind's label."""
    return f"fk_{name}"


def feature_act_col(name: str) -> str:
    """Inside the features pass: the cited activity as one struct (day, Id, subject)."""
    return f"fa_{name}"


def feature_answered_col(name: str) -> str:
    """Inside the features pass: the last answer to an `unanswered` feature's triggers."""
    return f"fx_{name}"


def flag_col(flag_id: str) -> str:
    return f"g_{flag_id}"


def flag_since_col(flag_id: str) -> str:
    """The day an open flag opened (its current run on the timeline began)."""
    return f"gs_{flag_id}"


def criterion_col(rung: int, index: int) -> str:
    return f"c_{rung}_{index}"


def c(name: str, table: str | None = None) -> exp.Column:
    """A column of a relation, as a tree."""
    return sql.col(name, table)


@dataclass(frozen=True)
class Relation:
    """A temp table one pass produces; `columns` are the engine's own, in order, with their DuckDB types. Rule
    columns (the prefixed ones) follow them."""

    name: str
    columns: tuple[tuple[str, str], ...]
    doc: str

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.columns]


# What the backends provide (see connector.crm): the contacts with their current trust fields, and their activities.
CONTACTS = Relation(
    "crm_contact",
    (
        ("Id", "VARCHAR"),
        ("cur_stage", "VARCHAR"),
        ("cur_since", "DATE"),
        ("cur_flags", "VARCHAR"),
        ("cur_next", "VARCHAR"),
        ("cur_reason", "VARCHAR"),
        ("cur_version", "VARCHAR"),
        ("cur_held_until", "DATE"),
        ("cur_previous", "VARCHAR"),
    ),
    "one row per live contact: its Contact fields and, as cur_*, the trust fields the CRM shows now",
)
ACTIVITIES = Relation(
    "crm_activity",
    (
        ("Id", "VARCHAR"),
        ("WhoId", "VARCHAR"),
        ("object", "VARCHAR"),
        ("day", "DATE"),
    ),
    "one row per live activity of a contact, dated; its Task/Event fields follow (connector.vocabulary)",
)

# Facts of an activity the engine carries along for explain and for discretion; NULL where a backend lacks them.
ACTIVITY_FACTS: tuple[tuple[str, str], ...] = (
    ("IsPrivate", "BOOLEAN"),
    ("Incoming", "BOOLEAN"),
    ("HasEmailMessage", "BOOLEAN"),
    ("DaySource", "VARCHAR"),
    ("LoggedDate", "DATE"),
    ("IsPrimary", "BOOLEAN"),
    ("Attendees", "INTEGER"),
    ("Declined", "BOOLEAN"),
    # What an answer can refer to (a thank-you answers the input it refers to: connector.engine.answers).
    ("WhatId", "VARCHAR"),
    ("RepliesTo", "VARCHAR"),
)

CLASSIFIED = Relation(
    "tl_act",
    (
        ("cid", "VARCHAR"),
        ("aid", "VARCHAR"),
        ("day", "DATE"),
        ("Subject", "VARCHAR"),
        ("object", "VARCHAR"),
        *ACTIVITY_FACTS,
    ),
    "activities on or before the evaluation date that are of at least one kind; then one k_<kind> BOOLEAN each",
)

BASE = Relation("tl_base", (("cid", "VARCHAR"),), "per-contact aggregates of the classified activities")
UNANSWERED = Relation("tl_unans", (("cid", "VARCHAR"),), "per-contact oldest unanswered trigger per feature")

FEATURES = Relation(
    "tl_feat",
    (
        ("cid", "VARCHAR"),
        ("cur_stage", "VARCHAR"),
        ("cur_since", "DATE"),
        ("cur_flags", "VARCHAR"),
        ("cur_next", "VARCHAR"),
        ("cur_reason", "VARCHAR"),
        ("cur_version", "VARCHAR"),
        ("cur_held_until", "DATE"),
        ("cur_previous", "VARCHAR"),
    ),
    "one row per contact; then f_<feature> (and fs_/fi_ for features that cite an activity)",
)

TIMELINE = Relation(
    "tl_timeline",
    (
        ("cid", "VARCHAR"),
        ("final", "INTEGER"),
        ("qualified_now", "INTEGER"),
        ("in_grace", "BOOLEAN"),
        ("since", "DATE"),
        ("held_until", "DATE"),
        ("next_change", "DATE"),
        ("previous", "INTEGER"),
    ),
    "one row per contact, read from its timeline (connector.engine.timeline) on the evaluation day: the rung it "
    "stands on, since when, the day a held rung drops, the next day anything can change without new activity, "
    "the rung it stood on before the current one; "
    "then gs_<flag>, the day each open flag opened",
)

PLACE = Relation(
    "tl_place",
    (
        *FEATURES.columns,
        ("open_flags", "INTEGER"),
        ("qualified", "INTEGER"),
        ("held", "INTEGER"),
        ("final", "INTEGER"),
        ("in_grace", "BOOLEAN"),
        ("held_until", "DATE"),
        ("next_change", "DATE"),
        ("new_stage", "VARCHAR"),
        ("new_since", "DATE"),
        ("new_flags", "VARCHAR"),
        ("new_next_full", "VARCHAR"),
        ("new_reason_full", "VARCHAR"),
        ("new_next", "VARCHAR"),
        ("new_reason", "VARCHAR"),
        ("new_held_until", "DATE"),
        ("new_previous", "VARCHAR"),
    ),
    "one row per contact: its rung, flags, texts; then its features, g_<flag>, gs_<flag> and c_<rung>_<i> columns",
)

# logical field -> (column holding the new value, column holding the current one)
PLAN_FIELDS: dict[str, tuple[str, str]] = {
    "stage": ("new_stage", "cur_stage"),
    "stage_since": ("new_since", "cur_since"),
    "flags": ("new_flags", "cur_flags"),
    "next_step": ("new_next", "cur_next"),
    "reason": ("new_reason", "cur_reason"),
    "held_until": ("new_held_until", "cur_held_until"),  # optional fields: see FieldsSection.OPTIONAL
    "previous_stage": ("new_previous", "cur_previous"),
}

PLAN = Relation(
    "tl_plan",
    (
        ("cid", "VARCHAR"),
        *((col, typ) for new, cur in PLAN_FIELDS.values() for col, typ in PLACE.columns if col in (new, cur)),
        ("cur_version", "VARCHAR"),
        *((f"ch_{k}", "BOOLEAN") for k in PLAN_FIELDS),
    ),
    "only the contacts with a field to change: new and current values, and ch_<field> for each",
)


def changed_col(logical: str) -> str:
    return f"ch_{logical}"


ALL = (CLASSIFIED, BASE, UNANSWERED, FEATURES, TIMELINE, PLACE, PLAN)
