"""Compile a rule file once, at load time: every name resolved, every condition typed, every template checked.

The result is a `RuleSet` of typed sqlglot trees (over the engine's rule namespace, see connector.engine.relations)
that the engine assembles into a few set-based passes. All problems are
collected and raised together as one `RuleError`, each with file:line:col, so an admin fixes them in one go.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import OrderedDict
from pathlib import Path

from pydantic import ValidationError

from connector import sql, vocabulary
from connector.engine import origin, relations
from connector.errors import Finding, RuleError
from connector.ruleset import loader

# Names a condition already means something by: a feature or flag under one of them could never be read (`true IS
# NOT NULL` is the constant, not the feature), so it is refused rather than silently shadowed.
from connector.ruleset.compiled import (
    CompiledCriterion,
    CompiledFeature,
    CompiledFlag,
    CompiledKind,
    CompiledOutcome,
    CompiledRung,
    Gone,
    RuleSet,
    Template,
)
from connector.ruleset.expr import Compiled, ExprError, Symbol, Type, compile_expr, suggest
from connector.ruleset.schema import NAME_RE, PERIOD_DAYS, ContactGone, Feature, RuleFile

__all__ = [
    "CompiledCriterion",
    "CompiledFeature",
    "CompiledFlag",
    "CompiledKind",
    "CompiledRung",
    "RuleSet",
    "Template",
    "activity_fields",
    "compile_located",
    "contact_fields",
    "load",
    "load_text",
    "period_days",
]

RESERVED = {"as_of", "open_flags", "object", "true", "false", "null"}
ACTIVITY_ATTRS = {"date", "subject", "kind", "cited"}  # what a template may cite of a first/last/unanswered feature
UNANSWERED_ATTRS = {"older_than_days"}  # and of an unanswered one: how many days a trigger waits before it counts

_DUCK_TO_TYPE = {
    "VARCHAR": Type.STRING,
    "INTEGER": Type.INT,
    "BOOLEAN": Type.BOOL,
    "DATE": Type.DATE,
    "TIMESTAMP": Type.DATE,
    "DOUBLE": Type.FLOAT,
}


def activity_fields() -> dict[str, Type]:
    """Fields a kind may match on: the union of Task and Event fields, plus `object`."""
    return {name: _DUCK_TO_TYPE[typ] for name, typ in vocabulary.activity_fields().items()}


def contact_fields() -> dict[str, Type]:
    return {name: _DUCK_TO_TYPE[typ] for name, typ in vocabulary.contact_fields().items()}


def load(path: Path) -> RuleSet:
    return compile_located(loader.load_file(path))


def load_text(text: str, path: str = "<rules>") -> RuleSet:
    return compile_located(loader.load_text(text, path))


def compile_located(located: loader.Located) -> RuleSet:
    """The file's RuleSet; the same text at the same path again is the RuleSet compiled before (a RuleSet is never
    changed after compiling: every pass copies the trees it edits), so `rules check`, a dry run and `simulate` in
    one process, or the syncs of a long-lived one, compile a file once. A refused file is compiled every time."""
    key = (located.path, located.text)
    rules = _COMPILED.get(key)
    if rules is None:
        rules = _compile(located)
        _COMPILED[key] = rules
        while len(_COMPILED) > _KEEP:
            _COMPILED.pop(next(iter(_COMPILED)))
    else:
        _COMPILED.move_to_end(key)
    return rules


_COMPILED: OrderedDict[tuple[str, str], RuleSet] = OrderedDict()
_KEEP = 8  # a rule file and the one `simulate` compares it with, a few times over


def _compile(located: loader.Located) -> RuleSet:
    findings: list[Finding] = []
    try:
        rf = RuleFile.model_validate(located.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after")))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key '{loc[-1]}'"
            elif err["type"] == "missing":
                msg = f"'{loc[-1]}' is required here"
            findings.append(located.finding(loc, msg))
        raise RuleError(findings) from None
    return _Compiler(rf, located, findings).run()


class _Compiler:
    def __init__(self, rf: RuleFile, located: loader.Located, findings: list[Finding]) -> None:
        self.rf = rf
        self.located = located
        self.findings = findings

    def _err(self, loc: loader.Loc, message: str, offset: int | None = None) -> None:
        self.findings.append(self.located.finding(loc, message, offset=offset))

    def _expr(
        self,
        loc: loader.Loc,
        text: str,
        symbols: dict[str, Symbol],
        want: Type | None,
        word_lists: dict[str, list[str]] | None = None,
    ) -> Compiled | None:
        try:
            compiled = compile_expr(text, symbols, want=want, word_lists=word_lists)
        except ExprError as exc:
            self._err(loc, exc.message, offset=exc.offset)
            return None
        origin.tag(compiled.expr, loc)
        return compiled

    def run(self) -> RuleSet:
        kinds = self._kinds()
        features = self._features(kinds)
        flags = self._flags(features)
        rungs = self._rungs(features, flags)
        top = self._template(("ladder", "top_next_step"), self.rf.ladder.top_next_step, features)
        outcomes = self._outcomes()
        if self.findings:
            raise RuleError(self.findings)
        assert top is not None
        digest = hashlib.sha256(self.located.text.encode("utf-8")).hexdigest()[:12]
        return RuleSet(
            name=self.rf.name,
            version=f"{self.rf.name}@{digest}",
            path=self.located.path,
            settings=self.rf.ladder,
            kinds=kinds,
            features=features,
            rungs=rungs,
            flags=flags,
            top_next_step=top,
            source=self.located,
            outcomes=outcomes,
        )

    def _kinds(self) -> dict[str, CompiledKind]:
        symbols = {name: Symbol(typ, sql.col(name)) for name, typ in activity_fields().items()}
        out: dict[str, CompiledKind] = {}
        for name, kind in self.rf.kinds.items():
            if not NAME_RE.match(name):
                self._err(("kinds", name), f"kind name '{name}': use lower case letters, digits and _")
                continue
            compiled = self._expr(("kinds", name, "match"), kind.match, symbols, Type.BOOL, self.rf.words)
            if compiled:
                out[name] = CompiledKind(
                    name,
                    kind.description,
                    kind.match,
                    compiled.expr,
                    compiled.names,
                    kind.label or name.replace("_", " "),
                    tuple(compiled.word_lists),
                )
        if not self.rf.kinds:
            self._err(("kinds",), "declare at least one activity kind")
        return out

    def _features(self, kinds: dict[str, CompiledKind]) -> dict[str, CompiledFeature]:
        contact = contact_fields()
        known_kinds = set(self.rf.kinds)
        typed: dict[str, CompiledFeature] = {}
        pending: dict[str, Feature] = {}
        for name, spec in self.rf.features.items():
            loc = ("features", name)
            if not NAME_RE.match(name):
                self._err(loc, f"feature name '{name}': use lower case letters, digits and _")
                continue
            if name in RESERVED:
                self._err(loc, f"'{name}' is a built-in name; choose another feature name")
                continue
            for attr in ("count", "first", "last", "distinct_periods", "ratio", "unanswered", "per", "answered_by"):
                for i, kind in enumerate(getattr(spec, attr) or []):
                    if kind not in known_kinds:
                        self._err((*loc, attr, i), f"unknown activity kind '{kind}'{suggest(kind, known_kinds)}")
            for trigger, naming in (spec.named_by or {}).items():
                if trigger not in (spec.unanswered or []):
                    self._err(
                        (*loc, "named_by", trigger),
                        f"'{trigger}' is not one of this feature's unanswered kinds "
                        f"({', '.join(spec.unanswered or [])}){suggest(trigger, set(spec.unanswered or []))}",
                    )
                for i, kind in enumerate(naming):
                    if kind not in known_kinds:
                        self._err(
                            (*loc, "named_by", trigger, i),
                            f"unknown activity kind '{kind}'{suggest(kind, known_kinds)}",
                        )
            kind_type = {
                "count": Type.INT,
                "distinct_periods": Type.INT,
                "ratio": Type.FLOAT,
                "first": Type.DATE,
                "last": Type.DATE,
                "unanswered": Type.DATE,
            }
            if spec.type in kind_type:
                typed[name] = CompiledFeature(name, spec, kind_type[spec.type], spec.description)
            elif spec.type == "field":
                assert spec.field is not None
                if spec.field not in contact:
                    self._err((*loc, "field"), f"unknown Contact field '{spec.field}'{suggest(spec.field, contact)}")
                    continue
                typed[name] = CompiledFeature(name, spec, contact[spec.field], spec.description)
            else:
                pending[name] = spec
        # Expression features may use each other: resolve in dependency order, and name a cycle if there is one.
        while pending:
            progressed = False
            for name, spec in list(pending.items()):
                assert spec.expr is not None
                symbols = self._feature_symbols(typed)
                unresolved = [n for n in pending if n != name and n in spec.expr]
                if any(_mentions(spec.expr, n) for n in unresolved):
                    continue
                compiled = self._expr(("features", name, "expr"), spec.expr, symbols, None)
                del pending[name]
                progressed = True
                if compiled:
                    typed[name] = CompiledFeature(name, spec, compiled.type, spec.description, compiled)
            if not progressed:
                for name in pending:
                    self._err(
                        ("features", name, "expr"),
                        f"feature '{name}' depends on itself through {', '.join(sorted(pending))}",
                    )
                break
        del kinds
        return typed

    def _feature_symbols(self, features: dict[str, CompiledFeature]) -> dict[str, Symbol]:
        symbols = {name: Symbol(f.type, sql.col(relations.feature_col(name))) for name, f in features.items()}
        symbols["as_of"] = Symbol(Type.DATE, sql.as_of())
        return symbols

    def _flags(self, features: dict[str, CompiledFeature]) -> list[CompiledFlag]:
        symbols = self._feature_symbols(features)
        out: list[CompiledFlag] = []
        seen_ids: dict[str, int] = {}
        seen_labels: dict[str, int] = {}
        for i, flag in enumerate(self.rf.flags):
            loc = ("flags", i)
            if flag.id in seen_ids:
                self._err((*loc, "id"), f"duplicate flag id '{flag.id}' (flag {seen_ids[flag.id] + 1} has it)")
            if flag.label in seen_labels:
                self._err((*loc, "label"), f"duplicate flag label '{flag.label}'")
            if flag.id in features or flag.id in RESERVED:
                self._err((*loc, "id"), f"flag id '{flag.id}' clashes with a feature or built-in name")
            if ";" in flag.label:
                self._err((*loc, "label"), "a flag label cannot contain ';' (it separates multi-select values)")
            seen_ids[flag.id] = i
            seen_labels[flag.label] = i
            compiled = self._expr((*loc, "when"), flag.when, symbols, Type.BOOL)
            template = self._template((*loc, "next_step"), flag.next_step, features)
            if compiled and template:
                out.append(CompiledFlag(flag.id, flag.label, flag.when, flag.says, compiled, template))
        return out

    def _rungs(self, features: dict[str, CompiledFeature], flags: list[CompiledFlag]) -> list[CompiledRung]:
        symbols = self._feature_symbols(features)
        symbols["open_flags"] = Symbol(Type.INT, sql.col("open_flags"))
        for flag in flags:
            symbols[flag.id] = Symbol(Type.BOOL, sql.col(relations.flag_col(flag.id)))
        out: list[CompiledRung] = []
        seen: dict[str, int] = {}
        for i, rung in enumerate(self.rf.rungs):
            loc = ("rungs", i)
            if rung.name in seen:
                self._err(
                    (*loc, "name"),
                    f"duplicate rung '{rung.name}': it is already rung {seen[rung.name] + 1}; rung names are unique",
                )
            seen[rung.name] = i
            if ";" in rung.name:
                self._err((*loc, "name"), "a rung name cannot contain ';'")
            if i == 0 and rung.requires:
                self._err(
                    (*loc, "requires"),
                    f"'{rung.name}' is the lowest rung, where every contact starts: it takes no criteria",
                )
            if i > 0 and not rung.requires:
                self._err((*loc, "name"), f"rung '{rung.name}' needs at least one criterion under 'requires'")
            criteria = []
            for j, crit in enumerate(rung.requires):
                compiled = self._expr((*loc, "requires", j, "when"), crit.when, symbols, Type.BOOL)
                if compiled:
                    criteria.append(CompiledCriterion(crit.when, crit.says or crit.when, compiled))
            template = (
                self._template((*loc, "next_step"), rung.next_step, features) if rung.next_step is not None else None
            )
            keep = self._template((*loc, "keep_step"), rung.keep_step, features) if rung.keep_step is not None else None
            out.append(CompiledRung(i, rung.name, rung.means, template, criteria, keep))
        return out

    def _outcomes(self) -> list[CompiledOutcome]:
        known = set(self.rf.kinds)
        out: list[CompiledOutcome] = []
        for name, spec in self.rf.outcomes.items():
            loc: loader.Loc = ("outcomes", name)
            if not NAME_RE.match(name):
                self._err(loc, f"outcome name '{name}': use lower case letters, digits and _")
                continue
            bad = False
            for attr in ("activity", "no_activity"):
                for i, kind in enumerate(getattr(spec, attr) or []):
                    if kind not in known:
                        self._err((*loc, attr, i), f"unknown activity kind '{kind}'{suggest(kind, known)}")
                        bad = True
            if bad:
                continue
            out.append(
                CompiledOutcome(
                    name=name,
                    good=spec.good,
                    says=spec.says or name.replace("_", " "),
                    type=spec.type,
                    kinds=tuple(spec.kinds),
                    opportunity_types=tuple(spec.opportunity_types) if spec.opportunity_types else None,
                    horizon_days=spec.horizon_days,
                    loc=loc,
                    gone=_gone(spec.contact_gone),
                )
            )
        return out

    def _template(self, loc: loader.Loc, text: str, features: dict[str, CompiledFeature]) -> Template | None:
        parts: list[tuple[str, str | None, str | None, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            self._err(loc, f"bad next-step text: {exc} (write {{{{ and }}}} for literal braces)")
            return None
        ok = True
        offset = 0
        offsets: list[int] = []
        for literal, field_name, spec, conversion in parsed:
            offset += len(literal)
            offsets.append(offset)
            if field_name is None:
                parts.append((literal, None, None, None))
                continue
            reference, bar, fallback = field_name.partition("|")
            name, _, attr = reference.partition(".")
            if spec or conversion:
                self._err(loc, f"placeholder '{{{field_name}}}': formats are not supported", offset=offset)
                ok = False
            elif name not in features:
                self._err(loc, f"unknown placeholder '{{{field_name}}}'{suggest(name, features)}", offset=offset)
                ok = False
            elif attr and not _citable(features[name], attr):
                hint = (
                    f"; '{name}' cites an activity: use {{{name}.date}}, {{{name}.kind}}, {{{name}.subject}} or "
                    f"{{{name}.cited}}"
                    + (f", or {{{name}.older_than_days}}" if features[name].spec.type == "unanswered" else "")
                    if features[name].cites_activity
                    else f"; '{name}' has no parts, write {{{name}}}"
                )
                self._err(loc, f"placeholder '{{{field_name}}}' is not available{hint}", offset=offset)
                ok = False
            parts.append((literal, name, attr or None, fallback if bar else None))
            offset += len(field_name) + 2
        return Template(text, tuple(parts), loc, tuple(offsets)) if ok else None


def _citable(feature: CompiledFeature, attr: str) -> bool:
    if not feature.cites_activity:
        return False
    return attr in ACTIVITY_ATTRS or (feature.spec.type == "unanswered" and attr in UNANSWERED_ATTRS)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def period_days(feature: Feature) -> int:
    assert feature.period is not None
    return PERIOD_DAYS[feature.period]


def _gone(spec: ContactGone | None) -> Gone | None:
    if spec is None:
        return None
    value = spec.inactive_value
    return Gone(
        email_bounced=spec.email_bounced,
        inactive_field=spec.inactive_field,
        inactive_value=("true" if value else "false") if isinstance(value, bool) else value,
        inactive_since_field=spec.inactive_since_field,
    )
