"""Reading a condition's parse tree for the linter: its conjuncts, numbers and positions."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp


def conjuncts(node: exp.Expr) -> Iterator[exp.Expr]:
    node = unparen(node)
    if isinstance(node, exp.And):
        yield from conjuncts(node.this)
        yield from conjuncts(node.expression)
    else:
        yield node


def unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def number(node: exp.Expr) -> float | None:
    node = unparen(node)
    if isinstance(node, exp.Neg):
        inner = number(node.this)
        return None if inner is None else -inner
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return float(str(node.this))
        except ValueError:
            return None
    return None


def offset(node: exp.Expr) -> int:
    starts = [int(n.meta["start"]) for n in node.walk() if n.meta.get("start") is not None]
    return min(starts, default=0)
