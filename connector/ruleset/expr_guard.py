"""Guards before word matching: put on when a condition is compiled, taken off where the words are looked up."""

from __future__ import annotations

from sqlglot import exp


def guarded(node: exp.Expr) -> exp.Expr:
    """Word matching (a regular expression per activity) runs only where the rest of its AND chain is not false:
    `cheap AND costly` becomes `CASE WHEN NOT COALESCE(cheap, true) THEN false ELSE (cheap AND costly) END`, the
    same value in three-valued logic, and both engines skip a CASE branch they do not take. A kind that reads
    words only of calls and meetings then spends no regular expression on the emails, which are most activities."""
    inner = node.this if isinstance(node, exp.Paren) else node
    if isinstance(inner, exp.And):
        parts = [guarded(p) for p in _conjuncts(inner)]
        cheap = [p for p in parts if not _costly(p)]
        costly = [p for p in parts if _costly(p)]
        if not cheap or not costly:
            return _and(parts)
        guard = _and(cheap)
        return exp.Paren(
            this=exp.Case(
                ifs=[exp.If(this=exp.Not(this=exp.Coalesce(this=guard, expressions=[exp.true()])), true=exp.false())],
                default=_and([guard.copy(), *costly]),
            )
        )
    for key, child in list(inner.args.items()):
        if isinstance(child, exp.Expr) and _costly(child):
            inner.set(key, guarded(child))
        elif isinstance(child, list):
            inner.set(key, [guarded(c) if isinstance(c, exp.Expr) and _costly(c) else c for c in child])
    return node


def unguarded(node: exp.Expr) -> exp.Expr:
    """`node` without the guards of `guarded` that no longer guard a regular expression (engine.classify reads the
    words from a lookup table, run once per distinct text): there a guard only evaluates its tests twice and splits
    every vector. A CASE is taken off only where its ELSE begins with its guard: it has the ELSE's value then."""
    for case in reversed(list(node.find_all(exp.Case))):  # the innermost first: a guard may hold guards
        default = _guarded_branch(case)
        if default is None:
            continue
        if case is node:
            return default
        case.replace(default)
    return node


def _guarded_branch(case: exp.Case) -> exp.Expr | None:
    """The ELSE of a guard `guarded` made, with no regular expression left in it; None for any other CASE."""
    ifs, default = case.args.get("ifs") or [], case.args.get("default")
    if case.args.get("this") is not None or len(ifs) != 1 or not isinstance(default, exp.Expr) or _costly(default):
        return None
    cond = ifs[0].this
    if not (
        ifs[0].args.get("true") == exp.false()
        and isinstance(cond, exp.Not)
        and isinstance(cond.this, exp.Coalesce)
        and cond.this.expressions == [exp.true()]
    ):
        return None
    guard = _conjuncts(cond.this.this)
    return default if _conjuncts(default)[: len(guard)] == guard else None


def _costly(node: exp.Expr) -> bool:
    return any(isinstance(n, exp.RegexpLike) for n in node.walk())


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    inner = node.this if isinstance(node, exp.Paren) else node
    if isinstance(inner, exp.And):
        return [*_conjuncts(inner.this), *_conjuncts(inner.expression)]
    return [node]


def _and(parts: list[exp.Expr]) -> exp.Expr:
    out = parts[0]
    for p in parts[1:]:
        out = exp.And(this=out, expression=p)
    return exp.Paren(this=out)
