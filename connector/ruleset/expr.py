"""The condition language of rule files: parsed by sqlglot, checked against a whitelist and types, emitted as SQL.

Only the node types below are accepted; every name must be a declared symbol. The SQL we emit is built by us
from the checked tree, never by pasting the admin's text, so a rule file cannot reach anything but its own
features. LIKE is emitted as ILIKE because SOQL's LIKE is case-insensitive and admins write it that way.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError


class Type(Enum):
    INT = "number"
    FLOAT = "decimal number"
    DATE = "date"
    BOOL = "true/false"
    STRING = "text"
    NULL = "NULL"

    @property
    def numeric(self) -> bool:
        return self in (Type.INT, Type.FLOAT)


@dataclass(frozen=True)
class Symbol:
    type: Type
    sql: str


@dataclass
class ExprError(Exception):
    message: str
    offset: int = 0

    def __str__(self) -> str:
        return self.message


@dataclass
class Compiled:
    sql: str
    type: Type
    names: list[str] = field(default_factory=list)  # symbols used, in order of first use


_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Coalesce: "COALESCE", exp.Least: "LEAST", exp.Greatest: "GREATEST", exp.Abs: "ABS",
}
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=", exp.NEQ: "<>", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=",
}
_ARITHMETIC: dict[type[exp.Expr], str] = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%"}


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest known name, or ''."""
    names = list(known)
    lowered = {n.lower(): n for n in names}
    if name.lower() in lowered:
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def compile_expr(text: str, symbols: dict[str, Symbol], *, want: Type | None = Type.BOOL) -> Compiled:
    """Parse, check and translate one condition; `want` is the type the result must have."""
    if not text or not text.strip():
        raise ExprError("the condition is empty")
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except ParseError as exc:
        err = exc.errors[0] if exc.errors else {}
        offset = _offset(text, err.get("line", 1), err.get("col", 1))
        hint = err.get("highlight") or ""
        what = str(err.get("description", exc))
        if what.startswith("Required keyword"):
            what = "a value is missing next to it"
        elif "Unexpected token" in what or "Invalid expression" in what:
            what = "unexpected here (a missing AND/OR or operator?)"
        raise ExprError(f"cannot parse the condition near '{hint}': {what}", offset) from None
    except TokenError as exc:
        raise ExprError(f"cannot read the condition: {exc} (an unclosed quote?)") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise ExprError("a condition is one expression; ';' is not allowed")
    checker = _Checker(text, symbols)
    tree = trees[0]
    assert tree is not None
    sql, typ = checker.emit(tree)
    if want is not None and typ not in (want, Type.NULL) and not (want.numeric and typ.numeric):
        raise ExprError(f"this condition gives a {typ.value}, but a {want.value} is needed here "
                        "(a comparison such as '>= 3' may be missing)")
    return Compiled(sql=sql, type=typ, names=checker.names)


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(s) + 1 for s in lines[: max(line - 1, 0)]) + max(col - 1, 0)


class _Checker:
    def __init__(self, text: str, symbols: dict[str, Symbol]) -> None:
        self.text = text
        self.symbols = symbols
        self.names: list[str] = []

    def _pos(self, node: exp.Expr) -> int:
        for n in node.walk():
            if isinstance(n, exp.Identifier) and n.meta.get("start") is not None:
                return int(n.meta["start"])
        return 0

    def _fail(self, node: exp.Expr, message: str) -> ExprError:
        return ExprError(message, self._pos(node))

    def emit(self, node: exp.Expr) -> tuple[str, Type]:
        if isinstance(node, exp.Paren):
            sql, typ = self.emit(node.this)
            return f"({sql})", typ
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Boolean):
            return ("TRUE" if node.this else "FALSE"), Type.BOOL
        if isinstance(node, exp.Null):
            return "NULL", Type.NULL
        if isinstance(node, exp.Literal):
            return self._literal(node)
        if isinstance(node, exp.Cast):
            return self._date_literal(node)
        if isinstance(node, exp.Not):
            sql, typ = self.emit(node.this)
            self._need(node.this, typ, Type.BOOL, "NOT")
            return f"(NOT {sql})", Type.BOOL
        if isinstance(node, (exp.And, exp.Or)):
            op = "AND" if isinstance(node, exp.And) else "OR"
            left, lt = self.emit(node.this)
            right, rt = self.emit(node.expression)
            self._need(node.this, lt, Type.BOOL, op)
            self._need(node.expression, rt, Type.BOOL, op)
            return f"({left} {op} {right})", Type.BOOL
        if type(node) in _COMPARISONS:
            return self._comparison(node, _COMPARISONS[type(node)])
        if isinstance(node, exp.Is):
            sql, _ = self.emit(node.this)
            if not isinstance(node.expression, exp.Null):
                raise self._fail(node, "IS is only for IS NULL / IS NOT NULL")
            return f"({sql} IS NULL)", Type.BOOL
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, (exp.Like, exp.ILike)):
            return self._like(node)
        if isinstance(node, exp.Between):
            sql, typ = self.emit(node.this)
            low, lt = self.emit(node.args["low"])
            high, ht = self.emit(node.args["high"])
            self._comparable(node, typ, lt, "BETWEEN")
            self._comparable(node, typ, ht, "BETWEEN")
            return f"({sql} BETWEEN {low} AND {high})", Type.BOOL
        if type(node) in _ARITHMETIC:
            return self._arithmetic(node, _ARITHMETIC[type(node)])
        if isinstance(node, exp.Neg):
            sql, typ = self.emit(node.this)
            self._need(node.this, typ, Type.INT, "-")
            return f"(-{sql})", typ
        if type(node) in _FUNCTIONS:
            return self._function(node, _FUNCTIONS[type(node)])
        if isinstance(node, exp.Anonymous):
            raise self._fail(node, f"unknown function {node.name}(); allowed: {', '.join(_FUNCTIONS.values())}")
        if isinstance(node, exp.Func):
            raise self._fail(node, f"the function {node.sql_name()}() is not allowed here; "
                                   f"allowed: {', '.join(_FUNCTIONS.values())}")
        raise self._fail(node, f"'{node.sql()}' is not allowed in a condition "
                               "(use names, numbers, 'text', DATE 'YYYY-MM-DD', comparisons, AND/OR/NOT, IN, LIKE)")

    def _column(self, node: exp.Column) -> tuple[str, Type]:
        if node.table:
            raise self._fail(node, f"'{node.sql()}': names are not qualified with a '.'")
        name = node.name
        sym = self.symbols.get(name)
        if sym is None:
            raise self._fail(node, f"unknown name '{name}'{suggest(name, self.symbols)}")
        if name not in self.names:
            self.names.append(name)
        return sym.sql, sym.type

    def _literal(self, node: exp.Literal) -> tuple[str, Type]:
        if node.is_string:
            return "'" + str(node.this).replace("'", "''") + "'", Type.STRING
        text = str(node.this)
        try:
            int(text)
        except ValueError:
            try:
                float(text)
            except ValueError:
                raise self._fail(node, f"'{text}' is not a number") from None
            return text, Type.FLOAT
        return text, Type.INT

    def _date_literal(self, node: exp.Cast) -> tuple[str, Type]:
        target = node.to.this if node.to else None
        inner = node.this
        if target == exp.DataType.Type.DATE and isinstance(inner, exp.Literal) and inner.is_string:
            try:
                value = dt.date.fromisoformat(str(inner.this))
            except ValueError:
                raise self._fail(node, f"'{inner.this}' is not a date (write DATE 'YYYY-MM-DD')") from None
            return f"DATE '{value.isoformat()}'", Type.DATE
        raise self._fail(node, "casts are not allowed; the only typed literal is DATE 'YYYY-MM-DD'")

    def _need(self, node: exp.Expr, got: Type, want: Type, op: str) -> None:
        if got == Type.NULL:
            return
        if want == Type.INT and got.numeric:
            return
        if got != want:
            raise self._fail(node, f"'{node.sql()}' is a {got.value}, but {op} needs a {want.value}")

    def _comparable(self, node: exp.Expr, a: Type, b: Type, op: str) -> None:
        if Type.NULL in (a, b) or a == b or (a.numeric and b.numeric):
            return
        raise self._fail(node, f"cannot compare a {a.value} with a {b.value} in '{node.sql()}' ({op})")

    def _comparison(self, node: exp.Expr, op: str) -> tuple[str, Type]:
        left, lt = self.emit(node.this)
        right, rt = self.emit(node.expression)
        self._comparable(node, lt, rt, op)
        if Type.NULL in (lt, rt):
            raise self._fail(node, f"'{node.sql()}' is never true: compare with NULL using IS NULL")
        return f"({left} {op} {right})", Type.BOOL

    def _in(self, node: exp.In) -> tuple[str, Type]:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise self._fail(node, "IN takes a list of values, like IN ('Call', 'Meeting')")
        sql, typ = self.emit(node.this)
        items = []
        for item in node.expressions:
            isql, ityp = self.emit(item)
            self._comparable(item, typ, ityp, "IN")
            items.append(isql)
        if not items:
            raise self._fail(node, "IN needs at least one value")
        return f"({sql} IN ({', '.join(items)}))", Type.BOOL

    def _like(self, node: exp.Expr) -> tuple[str, Type]:
        sql, typ = self.emit(node.this)
        pattern, ptyp = self.emit(node.expression)
        self._need(node.this, typ, Type.STRING, "LIKE")
        self._need(node.expression, ptyp, Type.STRING, "LIKE")
        neg = "NOT " if node.args.get("negate") else ""
        return f"({sql} {neg}ILIKE {pattern})", Type.BOOL

    def _arithmetic(self, node: exp.Expr, op: str) -> tuple[str, Type]:
        left, lt = self.emit(node.this)
        right, rt = self.emit(node.expression)
        if Type.NULL in (lt, rt):
            return f"({left} {op} {right})", rt if lt == Type.NULL else lt
        if lt.numeric and rt.numeric:
            result = Type.FLOAT if Type.FLOAT in (lt, rt) or op == "/" else Type.INT
            if op == "/":
                # Decimal division even for two counts: 3 / 2 is 1.5.
                return f"(CAST({left} AS DOUBLE) / NULLIF({right}, 0))", result
            return f"({left} {op} {right})", result
        if op in "+-" and lt == Type.DATE and rt == Type.INT:
            return f"CAST({left} {op} {right} AS DATE)", Type.DATE
        if op == "+" and lt == Type.INT and rt == Type.DATE:
            return f"CAST({right} + {left} AS DATE)", Type.DATE
        if op == "-" and lt == Type.DATE and rt == Type.DATE:
            return f"CAST({left} - {right} AS INTEGER)", Type.INT
        raise self._fail(node, f"cannot compute a {lt.value} {op} a {rt.value} in '{node.sql()}'")

    def _function(self, node: exp.Expr, name: str) -> tuple[str, Type]:
        args = [node.this, *node.expressions] if node.this is not None else list(node.expressions)
        parts: list[str] = []
        result = Type.NULL
        for arg in args:
            sql, typ = self.emit(arg)
            if name == "ABS":
                self._need(arg, typ, Type.INT, name)
            if result == Type.NULL:
                result = typ
            elif typ != Type.NULL:
                self._comparable(arg, result, typ, name)
                if typ == Type.FLOAT:
                    result = Type.FLOAT
            parts.append(sql)
        return f"{name}({', '.join(parts)})", result
