"""The one place SQL is made, for the engine and the CRM backends alike (a foundation module: it imports nothing
of ours).

Every statement the engine runs is a sqlglot tree. Engine-owned skeletons are parsed once from constant text with
`$slot` placeholders; whatever comes from a rule file or the config enters a tree only through `ident` (a quoted
identifier) or `lit` (a typed literal), and the evaluation date is the bound parameter `$as_of`. Nothing here
formats or replaces text, so a rung named `O'Friend' || read_text('/etc/passwd')` stays a string value.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb
import sqlglot
from sqlglot import exp

DIALECT = "duckdb"
AS_OF_PARAM = "as_of"
INT_LIMIT = 2**53  # integers beyond this are not exact as doubles, so conditions never see them

Slot = exp.Expr | str | int | float | bool | dt.date | None


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: the only way a name reaches SQL."""
    if "\x00" in name:
        raise ValueError("a name cannot contain a NUL character")
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def lit(value: object) -> exp.Expr:
    """A typed literal: the only way a value from rule or config text reaches SQL."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        if abs(value) > INT_LIMIT:
            raise ValueError(f"{value} is out of range (at most {INT_LIMIT} either side of 0)")
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return exp.Literal.number(repr(value))
    if isinstance(value, dt.datetime):
        raise TypeError("timestamps are passed as parameters, not literals")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text cannot contain a NUL character")
        return exp.Literal.string(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def as_of() -> exp.Expr:
    """The evaluation date, bound at execution time."""
    return exp.Placeholder(this=AS_OF_PARAM)


@functools.cache
def _parsed(template: str) -> exp.Expr:
    """The skeleton's tree, without the parser's positions (line, column, offsets in the constant text): nothing
    reads them, and every statement built from the skeleton would copy them on each of its nodes."""
    tree = sqlglot.parse_one(template, read=DIALECT)
    assert tree is not None
    for node in tree.walk():
        node._meta = None  # noqa: SLF001 - sqlglot keeps positions only there; `meta` would make an empty dict
    return tree


def _slot(value: Slot) -> exp.Expr:
    return value if isinstance(value, exp.Expr) else lit(value)


def q(template: str, **slots: Slot) -> exp.Expr:
    """An engine-owned skeleton (constant text) with its `$slots` filled by trees, identifiers or literals.

    `template` must be a constant of the engine's modules; the slots carry everything else. A slot's tree that has
    no place yet (made for this statement) is nested as it is; one that already has a place (a slot filled before,
    another statement, a rule's tree placed earlier) is copied, so no node ever has two parents. Copying every slot
    was a fifth of a small org's sync; statements that nest a growing tree once per step (the rounds of
    connector.engine.answers) copied it at every step.
    """
    tree = _parsed(template).copy()
    if not slots:
        return tree
    filled = {k: _slot(v) for k, v in slots.items()}

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name in filled:
            slot = filled[node.name]
            return slot if slot.parent is None else slot.copy()  # nesting it sets its parent: later places copy
        return node

    return tree.transform(fill, copy=False)


def table(name: str) -> exp.Table:
    return exp.Table(this=ident(name))


def alias(e: exp.Expr, name: str) -> exp.Alias:
    return exp.Alias(this=e, alias=ident(name))


def all_of(parts: Iterable[exp.Expr]) -> exp.Expr:
    """AND of non-NULL booleans: a plain AND chain (which DuckDB's optimiser reads best) up to FLAT_AT terms, one
    flat LEAST call beyond, so hundreds of terms never nest the tree deeply."""
    items = list(parts)
    if not items:
        return exp.true()
    if len(items) <= FLAT_AT:
        return exp.and_(*items)
    return exp.Least(this=items[0], expressions=items[1:])


def any_of(parts: Iterable[exp.Expr]) -> exp.Expr:
    """OR of non-NULL booleans: a plain OR chain up to FLAT_AT terms, one flat GREATEST call beyond."""
    items = list(parts)
    if not items:
        return exp.false()
    if len(items) <= FLAT_AT:
        return exp.or_(*items)
    return exp.Greatest(this=items[0], expressions=items[1:])


# A 32-deep AND/OR chain renders far inside Python's recursion limit; GREATEST over 10M rows of kind columns
# cost the 1M-contact sync about 20% against OR (bench/README.md).
FLAT_AT = 32


def func(name: str, *args: exp.Expr) -> exp.Expr:
    """A call of one of the engine's own functions (the name is engine text, never rule text). Its arguments are
    taken as they are, as every constructor here takes its parts: copying them cost a fifth of a rule file's
    statement building."""
    return exp.func(name, *args, dialect=DIALECT, copy=False)


def case(whens: Iterable[tuple[exp.Expr, exp.Expr]], default: exp.Expr | None = None) -> exp.Expr:
    c = exp.Case()
    for cond, then in whens:  # added in place (copy=False), as every constructor here takes its parts
        c = c.when(cond, then, copy=False)
    if default is not None:
        c = c.else_(default, copy=False)
    return c


def select(*columns: exp.Expr, from_: exp.Expr | str) -> exp.Select:
    source = table(from_) if isinstance(from_, str) else from_
    return exp.Select(expressions=list(columns)).from_(source)


def create_temp(name: str, body: exp.Expr, *, kind: str = "TABLE") -> exp.Expr:
    """`CREATE OR REPLACE TEMP TABLE name AS body` (or VIEW)."""
    return exp.Create(
        this=table(name),
        kind=kind,
        expression=body,
        replace=True,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def retarget(tree: exp.Expr, tables: Mapping[str, str], *, as_of_column: str | None = None) -> exp.Expr:
    """The same statement over other relations: table names swapped, and (for a replay that evaluates each row at
    its own date) the `$as_of` parameter turned into a column. Rule trees are reused, never re-parsed."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Table) and node.name in tables:
            return exp.Table(this=ident(tables[node.name]), alias=node.args.get("alias"))
        if as_of_column and isinstance(node, exp.Placeholder) and node.name == AS_OF_PARAM:
            return col(as_of_column)
        return node

    return tree.copy().transform(swap, copy=False)


def render(tree: exp.Expr, dialect: str = DIALECT) -> str:
    # sqlglot renders recursively; conditions are bounded in depth (connector.ruleset.expr), and this headroom
    # covers the statements that nest them.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _RENDER_RECURSION))
    try:
        # Not copied first (sqlglot's default): the DuckDB generator leaves the engine's trees as they are
        # (tests/unit/test_render.py), and the copy was a tenth of a small org's sync.
        return tree.sql(dialect=dialect, copy=False)
    finally:
        sys.setrecursionlimit(limit)


_RENDER_RECURSION = 10_000


@dataclass(frozen=True)
class Rendered:
    """A statement rendered once: its DuckDB text and the parameters it reads. `run` takes it as it takes a tree."""

    text: str
    params: frozenset[str]


def rendered(tree: exp.Expr) -> Rendered:
    return Rendered(render(tree), frozenset(p.name for p in tree.find_all(exp.Placeholder)))


def rendered_each(trees: Iterable[exp.Expr]) -> list[Rendered]:
    return [rendered(t) for t in trees]


T = TypeVar("T")


class Memo:
    """What was built and rendered from one rule set, by what it was built with.

    A process places contacts under the same rules again and again (each sync of a long-lived worker, `explain`
    and `simulate` after a dry run, the syncs of a test), and on a small org building and rendering the passes'
    trees cost more than DuckDB running them. A statement depends only on the rule set and the key's arguments;
    the rule set is never changed after compiling (connector.ruleset.compiler), so what is kept stays right."""

    def __init__(self) -> None:
        self._kept: dict[Hashable, Any] = {}

    def keep(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()` the first time `key` is asked for, what it gave after. `build` returns rendered statements
        (`rendered`, never trees: a tree placed in another statement is changed by it)."""
        if key not in self._kept:
            self._kept[key] = build()
        kept: T = self._kept[key]
        return kept


Statement = exp.Expr | Rendered


def run(
    con: duckdb.DuckDBPyConnection, stmt: Statement, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute a statement; `params` binds named parameters such as the evaluation date."""
    done = stmt if isinstance(stmt, Rendered) else rendered(stmt)
    bound = {k: v for k, v in (params or {}).items() if k in done.params}
    missing = done.params - set(bound)
    if missing:
        raise ValueError(f"unbound SQL parameters: {', '.join(sorted(missing))}")
    return con.execute(done.text, bound) if bound else con.execute(done.text)


def run_each(
    con: duckdb.DuckDBPyConnection, stmts: Iterable[Statement], params: Mapping[str, Any] | None = None
) -> None:
    for stmt in stmts:
        run(con, stmt, params)


def scalar(con: duckdb.DuckDBPyConnection, stmt: Statement, params: Mapping[str, Any] | None = None) -> Any:
    row = run(con, stmt, params).fetchone()
    assert row is not None
    return row[0]
