"""What an admin wrote, found again in the condition's text: sqlglot gives a known function its own canonical name
(`regexp_matches` is REGEXP_LIKE, `x ^ 2` is POWER) and keeps positions only on identifiers, so a finding about a
construct that is refused names and places it as written."""

from __future__ import annotations

import itertools
from collections.abc import Collection

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType
from sqlglot.tokens import Tokenizer

from connector.ruleset.expr_types import ExprError


def call(text: str, node: exp.Func, inside: int, allowed: Collection[str]) -> tuple[str, int]:
    """The name of the refused function call around position `inside`, as written, and where it starts."""
    tokens = Tokenizer().tokenize(text)
    calls = [
        tok
        for tok, after in itertools.pairwise(tokens)
        if after.token_type == TokenType.L_PAREN
        and tok.token_type != TokenType.L_PAREN
        and tok.text.upper() not in allowed
    ]
    before = [tok for tok in calls if tok.start < inside] or calls
    if not before:
        return node.sql_name(), inside
    return before[-1].text, before[-1].start


def not_an_operator(
    text: str, node: exp.Case | exp.IntDiv | exp.Pow, inside: int, allowed: Collection[str]
) -> ExprError:
    """CASE, `//` and a power (`^`, `**`, POWER()), refused with what to write instead."""
    if isinstance(node, exp.Case):
        upper = text.upper()
        starts = [i for i in range(len(upper)) if upper.startswith("CASE", i) and i <= inside]
        return ExprError(
            "CASE is not allowed in a condition: give each case its own expression feature, or combine comparisons "
            "with AND, OR and NOT",
            starts[-1] if starts else 0,
        )
    if isinstance(node, exp.IntDiv):
        return ExprError("'//' (whole-number division) is not allowed: use '/'", max(text.find("//"), 0))
    for operator in ("**", "^"):
        if operator in text:
            return ExprError(f"'{operator}' (a power) is not allowed: multiply instead (x * x)", text.find(operator))
    name, at = call(text, node, inside, allowed)
    return ExprError(f"the function {name}() is not allowed here: multiply instead (x * x)", at)
