"""Lint a compiled rule set: the mistakes that load fine but cannot be what the admin meant.

The analysis is deliberately simple and *sound*: it only reports what is certain. It reads each condition's
top-level AND chain and keeps the comparisons of one numeric feature with a constant (`x >= 5`, `x BETWEEN 1
AND 3`, `x = 0`, `x IN (1, 2)`), turning them into numeric bounds; everything else (OR, NOT, arithmetic over
features, dates) is left out, which can only make the set of contacts that pass *larger*. So when the bounds
left are contradictory, no contact can pass, whatever the parts left out say. Each feature's type adds its
known range: a count is a whole number of at least 0, `distinct_periods` is at most `periods`, `open_flags` at
most the number of flags. From these bounds we report:

- a comparison that its feature's range decides on its own (`count >= 0` is always true), a comparison of
  constants (`1 = 1`), and a condition whose bounds contradict each other (`x > 5 AND x < 3`);
- a rung no contact can reach: its criteria contradict those of a rung below it (rungs are cumulative), or every
  contact that meets it also meets the rung above, so none ever stays on it;
- thresholds out of order: the same feature with a lower bar on a higher rung, which then adds nothing;
- features never used, and kinds no feature reads;
- with the local CRM's data: kinds that match no activity at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb
import sqlglot
from sqlglot import exp

from connector import sql
from connector.engine import session
from connector.errors import Finding
from connector.ruleset import lint_bounds as bounds
from connector.ruleset.compiler import RuleSet, Template
from connector.ruleset.expr import ExprError, compile_expr
from connector.ruleset.expr_types import Type
from connector.ruleset.lint_bounds import Atom, Bound, Domain, Interval, Where
from connector.ruleset.lint_nodes import conjuncts as _conjuncts
from connector.ruleset.lint_nodes import number as _number
from connector.ruleset.lint_nodes import offset as _offset
from connector.ruleset.lint_nodes import unparen as _unparen
from connector.ruleset.loader import Loc

ERROR = "error"
DATE_TEXT_MAX = 11  # '30 Jun 2026' (engine.texts.date_text)
_FIELD_MAX = {"FirstName": 40, "LastName": 80, "Title": 128}  # Salesforce's lengths of Contact text fields
WARNING = "warning"
INFO = "info"

_COMPARE: dict[type[exp.Expr], str] = {exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.EQ: "="}
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "="}
_PREDICATES = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ, exp.NEQ, exp.Between, exp.In, exp.Like, exp.ILike, exp.Is)


@dataclass
class _Condition:
    loc: Loc
    text: str
    tree: exp.Expr
    rung: int | None = None
    atoms: list[Atom] = field(default_factory=list)  # the top-level AND chain's comparisons
    nested: list[Atom] = field(default_factory=list)  # comparisons under OR or NOT
    complete: bool = True  # every conjunct became an atom: the bounds say everything the condition says


def template_bound(t: Template, rules: RuleSet) -> int:
    """The most characters a template can write: its literals, and for each placeholder the longest value it can
    show (a first name holds 40 characters in Salesforce, a date 11, a cited subject 61, a number 24)."""
    total = 0
    for literal, name, attr, fallback in t.parts:
        total += len(literal)
        if name is None:
            continue
        feature = rules.features[name]
        if attr == "subject":
            size = 61  # engine.texts.SUBJECT_CITE_MAX and its ellipsis
            size = max(size, *(len(k.label) for k in rules.kinds.values()))
        elif attr == "kind":
            size = max(len(k.label) for k in rules.kinds.values())
        elif attr == "cited":  # 'kind of date ("subject")'
            size = max(len(k.label) for k in rules.kinds.values()) + len(" of ") + DATE_TEXT_MAX + len(' ("")') + 61
        elif attr == "older_than_days":
            size = len(str(feature.spec.older_than_days))
        elif feature.type == Type.DATE:
            size = DATE_TEXT_MAX
        elif feature.type == Type.STRING:
            size = _FIELD_MAX.get(feature.spec.field or "", 255)
        else:
            size = 24
        total += max(size, len(fallback or "?"))
    return total


def lint(rules: RuleSet) -> list[Finding]:
    """Every lint finding for a rule set that compiled, in file order."""
    return _Linter(rules).run()


class _Linter:
    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.findings: list[Finding] = []
        self.domains = bounds.domains(rules)
        self._consts = duckdb.connect()
        session.lock(self._consts)  # it evaluates constants only: no file access, no setting changes

    def add(self, where: Where | Loc, message: str, severity: str) -> None:
        if isinstance(where, Where):
            f = self.rules.source.finding(where.loc, message, severity=severity, offset=where.offset)
        else:
            f = self.rules.source.finding(where, message, severity=severity)
        if f not in self.findings:
            self.findings.append(f)

    def run(self) -> list[Finding]:
        try:
            conditions = self._conditions()
            for cond in conditions:
                self._constants(cond)
                self._decided(cond)
                self._contradiction(cond)
            rungs = [c for c in conditions if c.rung is not None]
            self._ladder(rungs)
            self._order(rungs)
            self._unused()
            self._keep_steps()
        finally:
            self._consts.close()
        return sorted(self.findings, key=lambda f: (f.line, f.col))

    # -- parsing -------------------------------------------------------------------------------------------

    def _conditions(self) -> list[_Condition]:
        out: list[_Condition] = []
        for name, kind in self.rules.kinds.items():
            out.append(self._condition(("kinds", name, "match"), kind.match, None, atoms=False))
        for i, flag in enumerate(self.rules.flags):
            out.append(self._condition(("flags", i, "when"), flag.when, None))
        for rung in self.rules.rungs:
            for j, crit in enumerate(rung.criteria):
                out.append(self._condition(("rungs", rung.index, "requires", j, "when"), crit.when, rung.index))
        return out

    def _condition(self, loc: Loc, text: str, rung: int | None, *, atoms: bool = True) -> _Condition:
        tree = sqlglot.parse_one(text, read="duckdb")  # it compiled, so it parses
        cond = _Condition(loc, text, tree, rung)
        if not atoms:
            return cond
        top = set()
        for part in _conjuncts(tree):
            top.add(id(_unparen(part)))
            atom = self._atom(part, cond)
            if atom is None:
                cond.complete = False
            else:
                cond.atoms.append(atom)
        for node in tree.walk():
            if id(node) not in top and isinstance(node, (*_COMPARE, exp.Between, exp.In)):
                atom = self._atom(node, cond)
                if atom is not None:
                    cond.nested.append(atom)
        return cond

    def _atom(self, node: exp.Expr, cond: _Condition) -> Atom | None:
        node = _unparen(node)
        where = Where(cond.loc, _offset(node), node.sql(dialect="duckdb"), cond.rung)
        if type(node) in _COMPARE:
            op = _COMPARE[type(node)]
            left, right = _unparen(node.this), _unparen(node.expression)
            name, value = self._feature(left), _number(right)
            if name is None or value is None:
                name, value, op = self._feature(right), _number(left), _FLIP[op]
            if name is None or value is None:
                return None
            return self._bounds(name, op, value, where)
        if isinstance(node, exp.Between):
            name = self._feature(_unparen(node.this))
            lo, hi = _number(node.args["low"]), _number(node.args["high"])
            if name is None or lo is None or hi is None:
                return None
            a, b = self._bounds(name, ">=", lo, where), self._bounds(name, "<=", hi, where)
            return Atom(name, a.low, b.high, where)
        if isinstance(node, exp.In) and not node.args.get("query"):
            name = self._feature(_unparen(node.this))
            values = [_number(v) for v in node.expressions]
            if name is None or not values or any(v is None for v in values):
                return None
            nums = [v for v in values if v is not None]
            a, b = self._bounds(name, ">=", min(nums), where), self._bounds(name, "<=", max(nums), where)
            return Atom(name, a.low, b.high, where)
        return None

    def _feature(self, node: exp.Expr) -> str | None:
        if isinstance(node, exp.Column) and not node.table and node.name in self.domains:
            return str(node.name)
        return None

    def _bounds(self, name: str, op: str, value: float, where: Where) -> Atom:
        whole = self.domains[name].integer
        low = high = None
        if op in (">", ">="):
            strict = op == ">"
            if whole:
                value, strict = (math.floor(value) + 1.0, False) if strict else (float(math.ceil(value)), False)
            low = Bound(value, strict, where)
        elif op in ("<", "<="):
            strict = op == "<"
            if whole:
                value, strict = (math.ceil(value) - 1.0, False) if strict else (float(math.floor(value)), False)
            high = Bound(value, strict, where)
        else:
            low, high = Bound(value, strict=False, where=where), Bound(value, strict=False, where=where)
            if whole and value != math.floor(value):
                low = Bound(math.inf, strict=False, where=where)  # a whole number never equals 2.5
        return Atom(name, low, high, where)

    # -- checks on one condition ---------------------------------------------------------------------------

    def _constants(self, cond: _Condition) -> None:
        """A predicate with no names in it always gives the same answer."""
        if not any(isinstance(n, exp.Column) for n in cond.tree.walk()):
            value = self._evaluate(cond.tree)
            self.add(
                Where(cond.loc, 0, cond.text),
                f"'{cond.text}' uses no names: it is always {value}; compare a feature or field instead",
                ERROR if value == "false" else WARNING,
            )
            return
        top = {id(_unparen(c)) for c in _conjuncts(cond.tree)}
        for node in cond.tree.walk():
            if isinstance(node, _PREDICATES) and not any(isinstance(n, exp.Column) for n in node.walk()):
                value = self._evaluate(node)
                severity = ERROR if value == "false" and id(node) in top else WARNING
                self.add(
                    Where(cond.loc, _offset(node), node.sql()),
                    f"'{node.sql()}' compares constants: it is always {value}; compare a feature instead",
                    severity,
                )

    def _evaluate(self, node: exp.Expr) -> str:
        try:
            tree = compile_expr(node.sql(dialect="duckdb"), {}, want=None).expr
            row = sql.run(self._consts, exp.select(tree)).fetchone()
        except (ExprError, duckdb.Error):
            return "the same"
        value = row[0] if row else None
        return "empty (NULL)" if value is None else str(bool(value)).lower()

    def _decided(self, cond: _Condition) -> None:
        """A comparison its feature's range decides: `count >= 0` is always true, `count < 0` never."""
        for atom in [*cond.atoms, *cond.nested]:
            dom = self.domains[atom.name]
            if dom.interval.tighten(atom.low, atom.high).empty():
                top = atom in cond.atoms
                self.add(
                    atom.where,
                    f"'{atom.where.text}' is never true: {atom.name} is {dom.what}; "
                    + ("this condition can never hold" if top else "fix the threshold or remove it"),
                    ERROR if top else WARNING,
                )
            elif not dom.nullable and dom.interval.within(atom.low, atom.high):
                self.add(
                    atom.where,
                    f"'{atom.where.text}' is always true: {atom.name} is {dom.what}; remove it or raise the threshold",
                    WARNING,
                )

    def _contradiction(self, cond: _Condition) -> None:
        """Bounds in one condition that exclude each other: `x > 5 AND x < 3`."""
        acc: dict[str, Interval] = {}
        for atom in cond.atoms:
            dom = self.domains[atom.name].interval
            if dom.tighten(atom.low, atom.high).empty():
                continue  # reported by _decided
            before = acc.get(atom.name, dom)
            after = before.tighten(atom.low, atom.high)
            if after.empty():
                other = bounds.conflict(before, atom)
                self.add(
                    atom.where,
                    f"'{atom.where.text}' contradicts '{other}' in the same condition: it is always false",
                    ERROR,
                )
                continue
            acc[atom.name] = after

    # -- checks across rungs -------------------------------------------------------------------------------

    def _ladder(self, criteria: list[_Condition]) -> None:
        """Rungs are cumulative: a rung whose bounds, with those of the rungs below, exclude each other is out of
        reach; a rung whose every contact also meets the rung above is never where a contact stays."""
        rungs = self.rules.rungs
        acc: dict[str, Interval] = {}
        for rung in rungs[1:]:
            mine = [c for c in criteria if c.rung == rung.index]
            for cond in mine:
                for atom in cond.atoms:
                    dom = self.domains[atom.name].interval
                    if dom.tighten(atom.low, atom.high).empty():
                        return  # the condition alone is never true: reported already
                    before = acc.get(atom.name, dom)
                    after = before.tighten(atom.low, atom.high)
                    if after.empty():
                        other = bounds.conflict_bound(before, atom)
                        if other is not None and other.where is not None and other.where.loc != cond.loc:
                            self.add(atom.where, self._unreachable(rung.index, atom, other.where), ERROR)
                        return
                    acc[atom.name] = after
            if rung.index + 1 < len(rungs):
                above = rungs[rung.index + 1]
                conds = [c for c in criteria if c.rung == above.index]
                if (
                    conds
                    and all(c.complete for c in conds)
                    and all(
                        atom.name in acc and acc[atom.name].within(atom.low, atom.high)
                        for c in conds
                        for atom in c.atoms
                    )
                ):
                    self.add(
                        ("rungs", rung.index, "name"),
                        f"no contact can stay on rung '{rung.name}': whoever meets it also meets every "
                        f"criterion of '{above.name}' above it; give '{above.name}' a criterion of its own",
                        ERROR,
                    )

    def _unreachable(self, rung: int, atom: Atom, other: Where) -> str:
        rungs = self.rules.rungs
        name = rungs[rung].name
        above = [r.name for r in rungs[rung + 1 :]]
        tail = f", nor any rung above it ({', '.join(above)})" if above else ""
        line = self.rules.source.finding(other.loc, "", offset=other.offset).line
        if other.rung == rung:
            where = f"another criterion of the same rung (line {line})"
        else:
            where = f"rung '{rungs[other.rung or 0].name}' below it (line {line}), and rungs are cumulative"
        return (
            f"no contact can reach rung '{name}'{tail}: '{atom.where.text}' contradicts '{other.text}' of "
            f"{where}; change one of the two thresholds"
        )

    def _order(self, criteria: list[_Condition]) -> None:
        """The same feature with a lower bar on a higher rung: that criterion adds nothing."""
        by_rung: dict[int, list[Atom]] = {}
        for cond in criteria:
            if cond.rung is not None:
                by_rung.setdefault(cond.rung, []).extend(cond.atoms)
        names = {r.index: r.name for r in self.rules.rungs}
        for high_rung, atoms in sorted(by_rung.items()):
            for atom in atoms:
                for low_rung in range(1, high_rung):
                    for below in by_rung.get(low_rung, []):
                        if below.name != atom.name:
                            continue
                        looser = (
                            atom.low is not None
                            and below.low is not None
                            and bounds.tighter_low(below.low, atom.low)
                            and atom.high is None
                        ) or (
                            atom.high is not None
                            and below.high is not None
                            and bounds.tighter_high(below.high, atom.high)
                            and atom.low is None
                        )
                        if looser:
                            self.add(
                                atom.where,
                                f"thresholds out of order: rung '{names[high_rung]}' needs '{atom.where.text}', "
                                f"a lower bar than '{below.where.text}' on rung '{names[low_rung]}' below it; "
                                "rungs are cumulative, so this criterion adds nothing: swap the thresholds "
                                "or tighten this one",
                                WARNING,
                            )

    # -- names never used ----------------------------------------------------------------------------------

    def _unused(self) -> None:
        rules = self.rules
        used: set[str] = set()
        roots: list[str] = []
        for rung in rules.rungs:
            for crit in rung.criteria:
                roots.extend(crit.compiled.names)
            for step in (rung.next_step, rung.keep_step):
                if step is not None:
                    roots.extend(step.names)
        for flag in rules.flags:
            roots.extend(flag.compiled.names)
            roots.extend(flag.next_step.names)
        roots.extend(rules.top_next_step.names)
        while roots:
            name = roots.pop()
            if name in used or name not in rules.features:
                continue
            used.add(name)
            compiled = rules.features[name].expr
            if compiled is not None:
                roots.extend(compiled.names)
        for name in rules.features:
            if name not in used:
                self.add(
                    ("features", name),
                    f"feature '{name}' is declared but never used by a rung, a flag, a "
                    "next step or another feature: use it or remove it",
                    WARNING,
                )
        mentioned = {w for k in rules.kinds.values() for w in k.word_lists}
        for name in rules.source.data.get("words") or {}:
            if name not in mentioned:
                self.add(
                    ("words", name),
                    f"word list '{name}' is read by no kind: use it in a match as MENTIONS({name}, Subject) "
                    "or remove it",
                    WARNING,
                )
        read = {k for f in rules.features.values() for k in f.spec.kinds} | {k for o in rules.outcomes for k in o.kinds}
        for name in rules.kinds:
            if name not in read:
                self.add(
                    ("kinds", name),
                    f"kind '{name}' is read by no feature, so it changes nothing: count it in a feature or remove it",
                    WARNING,
                )

    def _keep_steps(self) -> None:
        """Held advice opens with what to do and by when, and must fit the 255 characters of the next step
        whatever the contact's name and cited activity."""
        from connector.engine.texts import NEXT_STEP_MAX, is_flag_criterion, keep_lead  # noqa: PLC0415 - texts imports the compiler

        rules = self.rules
        for rung in rules.rungs[1:]:
            # The advice may be this rung's keep step, a lower rung's (what slips is its criterion), or an open
            # flag's next step (when the flags are what slips): each must fit after "To stay <rung> past <day>: ".
            steps: list[tuple[Loc, str, Template]] = []
            for lower in rules.rungs[1 : rung.index + 1]:
                if lower.keep_step is not None:
                    steps.append((("rungs", lower.index, "keep_step"), f"keep step of '{lower.name}'", lower.keep_step))
                if any(is_flag_criterion(c, rules.flags) for c in lower.criteria):
                    steps += [
                        (("flags", i, "next_step"), f"next step of flag '{f.label}'", f.next_step)
                        for i, f in enumerate(rules.flags)
                    ]
            for where, what, step in steps:
                longest = len(keep_lead(rung)) + DATE_TEXT_MAX + 2 + template_bound(step, rules)
                if longest > NEXT_STEP_MAX:
                    self.add(
                        where,
                        f"with the drop day and the longest values of its placeholders, the advice to keep "
                        f"'{rung.name}' ({what}) can run to {longest} characters; the next step holds "
                        f"{NEXT_STEP_MAX}, and what to do and by when must fit: shorten it",
                        ERROR,
                    )


# The bounds model lives in lint_bounds; its names stay importable from here.
__all__ = ["ERROR", "INFO", "WARNING", "Atom", "Bound", "Domain", "Interval", "Where", "lint"]
