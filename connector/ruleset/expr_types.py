"""The types of the condition language: value types, the symbols a condition may name, its compiled form."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from sqlglot import exp


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
    expr: exp.Expr  # what the name stands for in the engine's relation (a column in the rule namespace)


@dataclass
class ExprError(Exception):
    message: str
    offset: int = 0

    def __str__(self) -> str:
        return self.message


@dataclass
class Compiled:
    expr: exp.Expr
    type: Type
    names: list[str] = field(default_factory=list)  # symbols used, in order of first use
    word_lists: list[str] = field(default_factory=list)  # word lists MENTIONS() reads
