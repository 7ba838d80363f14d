"""The condition language of rule files: parsed by sqlglot, checked against a whitelist and types, emitted as SQL.

Only the node types below are accepted; every name must be a declared symbol. The SQL we emit is built by us
from the checked tree, never by pasting the admin's text, so a rule file cannot reach anything but its own
features. LIKE is emitted as ILIKE because SOQL's LIKE is case-insensitive and admins write it that way.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokenizer_core import TokenType
from sqlglot.tokens import Tokenizer

from connector import sql
from connector.engine import origin
from connector.ruleset import expr_written as written
from connector.ruleset import words
from connector.ruleset.expr_guard import guarded
from connector.ruleset.expr_safe import double as _double
from connector.ruleset.expr_safe import shift as _shift
from connector.ruleset.expr_safe import whole as _whole
from connector.ruleset.expr_types import Compiled, ExprError, Symbol, Type
from connector.ruleset.lint_nodes import offset as source_offset

__all__ = ["Compiled", "ExprError", "Symbol", "Type", "compile_expr", "suggest"]

# Limits that keep a condition cheap to parse, type and run, and far from Python's recursion limit.
MAX_TEXT = 4000
MAX_DEPTH = 24  # nested parentheses and function calls
MAX_TERMS = 200  # operators and values in one condition
MAX_DIGITS = 24
MENTIONS = "MENTIONS"  # MENTIONS(word_list, Subject, Description): whole words of a list (connector.ruleset.words)
IS_ONLY = "IS_ONLY"  # IS_ONLY(word_list, Subject): the text is one entry of the list and nothing else ("Call")

_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Coalesce: "COALESCE",
    exp.Least: "LEAST",
    exp.Greatest: "GREATEST",
    exp.Abs: "ABS",
}
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
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


def compile_expr(
    text: str,
    symbols: dict[str, Symbol],
    *,
    want: Type | None = Type.BOOL,
    word_lists: dict[str, list[str]] | None = None,
) -> Compiled:
    """Parse, check and translate one condition; `want` is the type the result must have. `word_lists`: the rule
    file's `words:` section, which MENTIONS() reads (None where MENTIONS is not allowed: over features)."""
    if not text or not text.strip():
        raise ExprError("the condition is empty")
    _check_size(text)
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
    except RecursionError:
        raise ExprError(f"the condition is nested too deeply (at most {MAX_DEPTH} levels)") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise ExprError("a condition is one expression; ';' is not allowed")
    checker = _Checker(text, symbols, word_lists)
    tree = trees[0]
    assert tree is not None
    try:
        tree_out, typ = checker.emit(tree)
    except RecursionError:
        raise ExprError(f"the condition is nested too deeply (at most {MAX_DEPTH} levels)") from None
    if want is not None and typ not in (want, Type.NULL) and not (want.numeric and typ.numeric):
        raise ExprError(
            f"this condition gives a {typ.value}, but a {want.value} is needed here "
            "(a comparison such as '>= 3' may be missing)"
        )
    if checker.lists or any(isinstance(n, exp.RegexpLike) for n in tree_out.walk()):
        tree_out = guarded(tree_out)
    return Compiled(expr=tree_out, type=typ, names=checker.names, word_lists=checker.lists)


def _check_size(text: str) -> None:
    """Refuse what would be slow or recursive to parse before the parser sees it, with a position."""
    if len(text) > MAX_TEXT:
        raise ExprError(
            f"the condition is {len(text):,} characters long; at most {MAX_TEXT:,} are allowed "
            "(split it into expression features)"
        )
    if "\x00" in text:
        raise ExprError("the condition contains a NUL character", text.index("\x00"))
    try:
        tokens = Tokenizer().tokenize(text)
    except TokenError as exc:
        raise ExprError(f"cannot read the condition: {exc} (an unclosed quote?)") from None
    depth = 0
    operators = 0
    for tok in tokens:
        if tok.token_type == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_DEPTH:
                raise ExprError(
                    f"the condition nests parentheses more than {MAX_DEPTH} deep; "
                    "name a part of it as an expression feature",
                    tok.start,
                )
        elif tok.token_type == TokenType.R_PAREN:
            depth = max(0, depth - 1)
        elif tok.token_type in _COUNTED:
            operators += 1
            if operators > MAX_TERMS:
                raise ExprError(
                    f"the condition has more than {MAX_TERMS} operators and values; "
                    "split it into expression features or use IN (...)",
                    tok.start,
                )
        if tok.token_type == TokenType.NUMBER and len(tok.text) > MAX_DIGITS:
            raise ExprError(f"the number '{tok.text[:12]}…' is too long to be a threshold", tok.start)


_COUNTED = {
    TokenType.AND,
    TokenType.OR,
    TokenType.PLUS,
    TokenType.DASH,
    TokenType.STAR,
    TokenType.SLASH,
    TokenType.MOD,
    TokenType.NOT,
    TokenType.COMMA,
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.GT,
    TokenType.GTE,
    TokenType.LT,
    TokenType.LTE,
}


def _offset(text: str, line: int, col: int) -> int:
    lines = text.split("\n")
    return sum(len(s) + 1 for s in lines[: max(line - 1, 0)]) + max(col - 1, 0)


class _Checker:
    def __init__(self, text: str, symbols: dict[str, Symbol], word_lists: dict[str, list[str]] | None) -> None:
        self.text = text
        self.symbols = symbols
        self.word_lists = word_lists
        self.names: list[str] = []
        self.lists: list[str] = []

    def _pos(self, node: exp.Expr) -> int:
        for n in node.walk():
            if isinstance(n, exp.Identifier) and n.meta.get("start") is not None:
                return int(n.meta["start"])
        return 0

    def _fail(self, node: exp.Expr, message: str) -> ExprError:
        return ExprError(message, self._pos(node))

    def emit(self, node: exp.Expr) -> tuple[exp.Expr, Type]:
        out, typ = self._emit(node)
        # Where this part was written, for findings on the engine statements made from it (engine.origin).
        out.meta.setdefault(origin.SOURCE_OFFSET, source_offset(node))
        return out, typ

    def _emit(self, node: exp.Expr) -> tuple[exp.Expr, Type]:
        if isinstance(node, exp.Paren):
            inner, typ = self.emit(node.this)
            return exp.Paren(this=inner), typ
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Boolean):
            return exp.Boolean(this=bool(node.this)), Type.BOOL
        if isinstance(node, exp.Null):
            return exp.Null(), Type.NULL
        if isinstance(node, exp.Literal):
            return self._literal(node)
        if isinstance(node, exp.Cast):
            return self._date_literal(node)
        if isinstance(node, exp.Not):
            inner, typ = self.emit(node.this)
            self._need(node.this, typ, Type.BOOL, "NOT")
            return exp.Not(this=exp.Paren(this=inner)), Type.BOOL
        if isinstance(node, (exp.And, exp.Or)):
            op = "AND" if isinstance(node, exp.And) else "OR"
            left, lt = self.emit(node.this)
            right, rt = self.emit(node.expression)
            self._need(node.this, lt, Type.BOOL, op)
            self._need(node.expression, rt, Type.BOOL, op)
            return exp.Paren(this=type(node)(this=left, expression=right)), Type.BOOL
        if type(node) in _COMPARISONS:
            return self._comparison(node, _COMPARISONS[type(node)])
        if isinstance(node, exp.Is):
            inner, _ = self.emit(node.this)
            if not isinstance(node.expression, exp.Null):
                raise self._fail(node, "IS is only for IS NULL / IS NOT NULL")
            return exp.Paren(this=exp.Is(this=inner, expression=exp.Null())), Type.BOOL
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, (exp.Like, exp.ILike)):
            return self._like(node)
        if isinstance(node, exp.Between):
            inner, typ = self.emit(node.this)
            low, lt = self.emit(node.args["low"])
            high, ht = self.emit(node.args["high"])
            self._comparable(node, typ, lt, "BETWEEN")
            self._comparable(node, typ, ht, "BETWEEN")
            return exp.Paren(this=exp.Between(this=inner, low=low, high=high)), Type.BOOL
        if type(node) in _ARITHMETIC:
            return self._arithmetic(node, _ARITHMETIC[type(node)])
        if isinstance(node, exp.Neg):
            inner, typ = self.emit(node.this)
            self._need(node.this, typ, Type.INT, "-")
            if typ == Type.INT:
                return _whole(exp.Neg(this=_double(inner))), typ
            return exp.Paren(this=exp.Neg(this=inner)), typ
        if isinstance(node, (exp.Case, exp.IntDiv, exp.Pow)):
            raise written.not_an_operator(self.text, node, self._pos(node), _FUNCTIONS.values())
        if type(node) in _FUNCTIONS:
            return self._function(node, _FUNCTIONS[type(node)])
        if isinstance(node, exp.Anonymous) and str(node.this).upper() in (MENTIONS, IS_ONLY):
            return self._mentions(node, str(node.this).upper())
        if isinstance(node, exp.Anonymous):
            raise self._fail(node, f"unknown function {node.name}(); allowed: {', '.join(_FUNCTIONS.values())}")
        if isinstance(node, exp.Func):
            name, at = written.call(self.text, node, self._pos(node), _FUNCTIONS.values())
            raise ExprError(f"the function {name}() is not allowed here; allowed: {', '.join(_FUNCTIONS.values())}", at)
        raise self._fail(
            node,
            f"'{node.sql()}' is not allowed in a condition "
            "(use names, numbers, 'text', DATE 'YYYY-MM-DD', comparisons, AND/OR/NOT, IN, LIKE)",
        )

    def _column(self, node: exp.Column) -> tuple[exp.Expr, Type]:
        if node.table:
            raise self._fail(node, f"'{node.sql()}': names are not qualified with a '.'")
        name = node.name
        sym = self.symbols.get(name)
        if sym is None:
            raise self._fail(node, f"unknown name '{name}'{suggest(name, self.symbols)}")
        if name not in self.names:
            self.names.append(name)
        return sym.expr.copy(), sym.type

    def _literal(self, node: exp.Literal) -> tuple[exp.Expr, Type]:
        if node.is_string:
            text = str(node.this)
            if "\x00" in text:
                raise self._fail(node, "text cannot contain a NUL character")
            return sql.lit(text), Type.STRING
        text = str(node.this)
        if len(text) > MAX_DIGITS:
            raise self._fail(node, f"the number '{text[:12]}…' is too long to be a threshold")
        try:
            whole = int(text)
        except ValueError:
            return self._decimal(node, text)
        if abs(whole) > sql.INT_LIMIT:
            raise self._fail(node, f"'{text}' is out of range (at most {sql.INT_LIMIT:,} either side of 0)")
        return sql.lit(whole), Type.INT

    def _decimal(self, node: exp.Expr, text: str) -> tuple[exp.Expr, Type]:
        try:
            value = float(text)
        except ValueError:
            raise self._fail(node, f"'{text}' is not a number") from None
        if not math.isfinite(value) or abs(value) > sql.INT_LIMIT:
            raise self._fail(node, f"'{text}' is out of range (at most {sql.INT_LIMIT:,} either side of 0)")
        return sql.lit(value), Type.FLOAT

    def _date_literal(self, node: exp.Cast) -> tuple[exp.Expr, Type]:
        target = node.to.this if node.to else None
        inner = node.this
        if target == exp.DataType.Type.DATE and isinstance(inner, exp.Literal) and inner.is_string:
            try:
                value = dt.date.fromisoformat(str(inner.this))
            except ValueError:
                raise self._fail(node, f"'{inner.this}' is not a date (write DATE 'YYYY-MM-DD')") from None
            return sql.lit(value), Type.DATE
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

    def _comparison(self, node: exp.Expr, op: str) -> tuple[exp.Expr, Type]:
        left, lt = self.emit(node.this)
        right, rt = self.emit(node.expression)
        self._comparable(node, lt, rt, op)
        if Type.NULL in (lt, rt):
            raise self._fail(node, f"'{node.sql()}' is never true: compare with NULL using IS NULL")
        return exp.Paren(this=type(node)(this=left, expression=right)), Type.BOOL

    def _in(self, node: exp.In) -> tuple[exp.Expr, Type]:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
            raise self._fail(node, "IN takes a list of values, like IN ('Call', 'Meeting')")
        inner, typ = self.emit(node.this)
        items = []
        for item in node.expressions:
            value, ityp = self.emit(item)
            self._comparable(item, typ, ityp, "IN")
            items.append(value)
        if not items:
            raise self._fail(node, "IN needs at least one value")
        return exp.Paren(this=exp.In(this=inner, expressions=items)), Type.BOOL

    def _like(self, node: exp.Expr) -> tuple[exp.Expr, Type]:
        inner, typ = self.emit(node.this)
        pattern, ptyp = self.emit(node.expression)
        self._need(node.this, typ, Type.STRING, "LIKE")
        self._need(node.expression, ptyp, Type.STRING, "LIKE")
        like: exp.Expr = exp.ILike(this=inner, expression=pattern)
        if node.args.get("negate"):
            like = exp.Not(this=like)
        return exp.Paren(this=like), Type.BOOL

    def _mentions(self, node: exp.Anonymous, fn: str) -> tuple[exp.Expr, Type]:
        """MENTIONS(list, Field, ...): whether any of the fields holds a word of the list (connector.ruleset.words);
        IS_ONLY(list, Field, ...): whether the fields together say one entry and nothing more (a generic subject),
        as one regular expression over the fields joined, whose letters a-z match either case. Never NULL: empty
        fields mention nothing. Only A-Z is folded, in the pattern: lower() and a case-insensitive flag fold a few
        other letters differently in DuckDB and Java ('İ', the Kelvin sign), and one engine must not read a word
        the other misses."""
        if self.word_lists is None:
            raise self._fail(node, f"{fn}() reads an activity's text: it is for a kind's match")
        args = list(node.expressions)
        if len(args) < 2:
            raise self._fail(node, f"{fn}(list, Subject[, Description ...]) needs a word list and a field")
        first = args[0]
        if isinstance(first, exp.Literal) and first.is_string:
            entries = [str(first.this)]
            try:
                entries = [words.check_entry(entries[0])]
            except words.WordError as exc:
                raise ExprError(str(exc), source_offset(first)) from None
        elif isinstance(first, exp.Column) and not first.table:
            name = first.name
            if name not in self.word_lists:
                known = self.word_lists.keys()
                listed = f"; the file's lists: {', '.join(sorted(known))}" if known else "; declare it under words:"
                raise self._fail(first, f"unknown word list '{name}'{suggest(name, known)}{listed}")
            entries = self.word_lists[name]
            if name not in self.lists:
                self.lists.append(name)
        else:
            raise self._fail(node, f"{fn}() takes a word list's name (or one 'word') first, then fields")
        texts: list[exp.Expr] = []
        for arg in args[1:]:
            value, typ = self.emit(arg)
            self._need(arg, typ, Type.STRING, fn)
            texts.append(exp.Coalesce(this=value, expressions=[sql.lit("")]))
        joined = texts[0]
        for more in texts[1:]:
            joined = exp.DPipe(this=exp.DPipe(this=joined, expression=sql.lit(words.SEPARATOR)), expression=more)
        return exp.Paren(
            this=exp.RegexpLike(this=joined, expression=sql.lit(words.pattern(entries, whole=fn == IS_ONLY)))
        ), Type.BOOL

    def _arithmetic(self, node: exp.Expr, op: str) -> tuple[exp.Expr, Type]:
        """Arithmetic that cannot fail at run time: whole numbers are computed as doubles and turned back into
        whole numbers only within range (else NULL), division and remainder by zero are NULL, and a date moves by
        at most DATE_SHIFT_MAX days either way."""
        left, lt = self.emit(node.this)
        right, rt = self.emit(node.expression)
        cls = type(node)
        if Type.NULL in (lt, rt):
            return exp.Null(), rt if lt == Type.NULL else lt
        if lt.numeric and rt.numeric:
            result = Type.FLOAT if Type.FLOAT in (lt, rt) or op == "/" else Type.INT
            a, b = _double(left), _double(right)
            if op in "/%":
                b = exp.Nullif(this=b, expression=exp.Literal.number(0))
            value: exp.Expr = exp.Paren(this=cls(this=a, expression=b))
            return (_whole(value) if result == Type.INT else value), result
        if op in "+-" and lt == Type.DATE and rt == Type.INT:
            return _shift(left, right, negative=op == "-"), Type.DATE
        if op == "+" and lt == Type.INT and rt == Type.DATE:
            return _shift(right, left, negative=False), Type.DATE
        if op == "-" and lt == Type.DATE and rt == Type.DATE:
            return exp.cast(exp.Paren(this=exp.Sub(this=left, expression=right)), "BIGINT"), Type.INT
        raise self._fail(node, f"cannot compute a {lt.value} {op} a {rt.value} in '{node.sql()}'")

    def _function(self, node: exp.Expr, name: str) -> tuple[exp.Expr, Type]:
        args = [node.this, *node.expressions] if node.this is not None else list(node.expressions)
        parts: list[exp.Expr] = []
        result = Type.NULL
        for arg in args:
            value, typ = self.emit(arg)
            if name == "ABS":
                self._need(arg, typ, Type.INT, name)
            if result == Type.NULL:
                result = typ
            elif typ != Type.NULL:
                self._comparable(arg, result, typ, name)
                if typ == Type.FLOAT:
                    result = Type.FLOAT
            parts.append(value)
        if name == "ABS":
            absolute = exp.Abs(this=_double(parts[0]))
            return (_whole(absolute) if result == Type.INT else absolute), result
        return sql.func(name, *parts), result
