"""Arithmetic the condition language emits, made so it cannot fail at run time: whole numbers are computed as
doubles and come back with TRY_CAST (NULL when out of range), and a date moves by at most DATE_SHIFT_MAX days."""

from __future__ import annotations

from sqlglot import exp

from connector import sql

DATE_SHIFT_MAX = 1_000_000  # days a date may be moved by arithmetic (beyond it: clamped)


def double(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, "DOUBLE")


def whole(e: exp.Expr) -> exp.Expr:
    """A double back to a whole number; NULL when out of range, never an overflow. `e` appears once, so nested
    arithmetic stays linear in size."""
    return exp.TryCast(this=e, to=exp.DataType.build("BIGINT"))


def shift(date: exp.Expr, days: exp.Expr, *, negative: bool) -> exp.Expr:
    """A date moved by a number of days, clamped to DATE_SHIFT_MAX either way so it can never leave the calendar."""
    bound = sql.lit(DATE_SHIFT_MAX)
    clamped = exp.Least(
        this=exp.Greatest(this=double(days), expressions=[exp.Neg(this=bound.copy())]), expressions=[bound]
    )
    step = exp.cast(clamped, "INTEGER")
    moved = exp.Sub(this=date, expression=step) if negative else exp.Add(this=date, expression=step)
    return exp.cast(exp.Paren(this=moved), "DATE")
