"""A seeded mutator of rule files, and a runner that puts a mutant through `rules check`, `sync --dry-run` and
`simulate` on a small local demo org.

Rule files are untrusted input (issue 9): whatever a mutant holds, the three commands must end in 0, 1 or 4, never
in 70 or a traceback; a file that passes `rules check` must not fail the dry run; and none of them may write to the
CRM. `tests/journeys/test_mutants.py` runs a few dozen mutants; `bench/mutants.py` runs a thousand.

Mutations are structured (a YAML document is parsed, changed and dumped again): hostile names and labels, numbers at
the edges, dropped, duplicated and retyped keys, empty lists, deep nesting, long OR chains, hostile templates, huge
texts; and textual (YAML tags, aliases and alias bombs, NUL bytes, a truncated file).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.crm.local import demo
from connector.crm.local.store import LocalCrm

ROOT = Path(__file__).resolve().parent.parent
LADDER = ROOT / "rules" / "ladder.yaml"
AS_OF = dt.date(2026, 6, 15)
ALLOWED_EXITS = frozenset({0, 1, 4})

# Names that meet the engine's own columns, SQL keywords, or its naming schemes.
ENGINE_NAMES = [
    "final",
    "held",
    "qualified",
    "in_grace",
    "cid",
    "cur_stage",
    "new_stage",
    "flag__x",
    "c__1__0",
    "k_x",
    "id",
    "Id",
    "as_of",
    "open_flags",
    "select",
    "from",
    "null",
    "true",
    "rung",
    "stage",
    "since",
    "kind__0",
    "f__x",
    "contact_id",
    "day",
    "object",
    "Subject",
]
# Free text: rung names, flag labels, descriptions, next steps.
HOSTILE_TEXTS = [
    "O'Friend",
    "' || read_text('/etc/passwd') || '",
    "Friend' || (SELECT 1) || '",
    'Say "hi"',
    "a;b",
    "; DROP TABLE Contact; --",
    "{}",
    "{first_name",
    "}",
    "{{x}}",
    "{unknown}",
    "{first_name.date}",
    "Zoë 🙂",
    "\u210c\U0001d522\U0001d529\U0001d529\U0001d52c",
    "\u202eevil",
    "tab\there",
    "line\nbreak",
    "$as_of",
    "?",
    "%s",
    "\\",
    "",
    " ",
    "x" * 300,
    "Ϸ" * 2000,
]
EDGE_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2**31,
    2**31 - 1,
    2**53 + 1,
    2**63,
    -(2**63),
    10**30,
    1e308,
    -1e308,
    float("inf"),
    1e-320,
    0.5,
    -0.0,
    True,
    None,
]
# Written into the YAML text as plain scalars, where the parser decides what they are.
EDGE_SCALARS = [
    "0",
    "-1",
    "2147483648",
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "-1e999",
    "1e999",
    "9" * 5000,
    ".nan",
    ".inf",
    "-.inf",
    "0x7fffffff",
    "0o777",
    "1_000",
    "+12",
    "1.",
    "~",
    "null",
]
HOSTILE_CONDITIONS = [
    "x / 0 > 1",
    "ABS(-9223372036854775808) > 0",
    "open_flags % 0 = 1",
    "conversations_180d * 9223372036854775807 * 9223372036854775807 > 0",
    "relationship_days > 1e308 * 10",
    "as_of - as_of > 2147483648",
    "conversations_180d >= 99999999999999999999999",
    "read_text('/etc/passwd') IS NULL",
    "(SELECT 1) = 1",
    "conversations_180d >= 1; DROP TABLE Contact",
    "1 = 1 -- comment",
    "Subject LIKE '%{}%'",
    "COALESCE(first_conversation, 5) > 1",
    "'a' || 'b' = 'ab'",
]


@dataclass
class Mutant:
    seed: int
    steps: list[str]
    text: str


class Mutator:
    """Applies 1-3 random mutations to a rule file, all drawn from one seeded stream."""

    def __init__(self, base: str, seed: int) -> None:
        self.base = base
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible stream, not a secret
        self.seed = seed

    def mutant(self) -> Mutant:
        data = yaml.safe_load(self.base)
        steps: list[str] = []
        textual: list[Callable[[str], str]] = []
        # Mostly one mutation, so that a fair share of mutants still compiles and reaches the engine.
        for _ in range(self.rng.choices([1, 2, 3], weights=[6, 3, 1])[0]):
            kind = self.rng.choices(_STRUCTURED + _TEXTUAL, weights=_WEIGHTS)[0]
            if kind in _TEXTUAL:
                textual.append(getattr(self, kind))
            else:
                data = getattr(self, kind)(data)
            steps.append(kind)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
        for change in textual:
            text = change(text)
        return Mutant(self.seed, steps, text)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _pick_path(self, data: Any, want: Callable[[Any], bool]) -> list[Any] | None:
        paths = [p for p, v in _walk(data) if p and want(v)]
        return self.rng.choice(paths) if paths else None

    def _names(self, data: Any, section: str) -> list[str]:
        part = data.get(section) if isinstance(data, dict) else None
        return [str(k) for k in part] if isinstance(part, dict) else []

    # -- structured mutations --------------------------------------------------------------------------------

    def rename_feature(self, data: Any) -> Any:
        """A feature renamed everywhere (definition, conditions, templates) to an engine-like name."""
        return self._rename(data, self.rng.choice(["features", "kinds"]))

    def _rename(self, data: Any, section: str) -> Any:
        names = self._names(data, section)
        if not names:
            return data
        old, new = self.rng.choice(names), self.rng.choice(ENGINE_NAMES)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
        return yaml.safe_load(re.sub(rf"\b{re.escape(old)}\b", new, text))

    def relabel(self, data: Any) -> Any:
        """A rung name, flag label or id, description or template set to hostile text."""
        path = self._pick_path(data, lambda v: isinstance(v, str))
        if path is not None:
            _set(data, path, self.rng.choice(HOSTILE_TEXTS))
        return data

    def rename_rung(self, data: Any) -> Any:
        rungs = data.get("rungs") if isinstance(data, dict) else None
        if isinstance(rungs, list) and rungs and isinstance(rungs[-1], dict):
            self.rng.choice([r for r in rungs if isinstance(r, dict)])["name"] = self.rng.choice(HOSTILE_TEXTS)
        return data

    def edge_number(self, data: Any) -> Any:
        path = self._pick_path(data, lambda v: isinstance(v, int | float) and not isinstance(v, bool))
        if path is not None:
            _set(data, path, self.rng.choice(EDGE_NUMBERS))
        return data

    def edge_number_in_condition(self, data: Any) -> Any:
        path = self._pick_path(data, lambda v: isinstance(v, str) and bool(re.search(r"\b\d+\b", v)))
        if path is not None:
            text = _get(data, path)
            value = self.rng.choice(["0", "-1", str(2**31), str(2**63), "1e308", "-1e999", "9" * 5000, "0.0"])
            _set(data, path, re.sub(r"\b\d+\b", value, text, count=1))
        return data

    def drop_key(self, data: Any) -> Any:
        path = self._pick_path(data, lambda _v: True)
        if path is not None:
            parent = _get(data, path[:-1])
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, list) and parent:
                parent.pop(path[-1])
        return data

    def empty_list(self, data: Any) -> Any:
        path = self._pick_path(data, lambda v: isinstance(v, list))
        if path is not None:
            _set(data, path, [])
        return data

    def swap_type(self, data: Any) -> Any:
        path = self._pick_path(data, lambda _v: True)
        if path is not None:
            _set(data, path, self.rng.choice([None, 0, "", [], {}, [1, 2], {"a": 1}, True, 3.5, "text"]))
        return data

    def hostile_condition(self, data: Any) -> Any:
        path = self._pick_condition(data)
        if path is not None:
            _set(data, path, self.rng.choice(HOSTILE_CONDITIONS))
        return data

    def nest_deeply(self, data: Any) -> Any:
        path = self._pick_condition(data)
        if path is not None:
            depth = self.rng.choice([10, 41, 42, 100, 1000, 5000])
            how = self.rng.choice(["paren", "not"])
            text = _get(data, path)
            nested = "(" * depth + text + ")" * depth if how == "paren" else "NOT " * depth + f"({text})"
            _set(data, path, nested)
        return data

    def chain_ors(self, data: Any) -> Any:
        path = self._pick_condition(data)
        if path is not None:
            n = self.rng.choice([2, 50, 990, 991, 5000, 20_000])
            _set(data, path, " OR ".join([f"({_get(data, path)})"] * n))
        return data

    def many_kinds(self, data: Any) -> Any:
        kinds = data.get("kinds") if isinstance(data, dict) else None
        if isinstance(kinds, dict):
            n = self.rng.choice([100, 2000, 20_000])
            for i in range(n):
                kinds[f"k{i}"] = {"match": "object = 'Task'"}
        return data

    def huge_text(self, data: Any) -> Any:
        path = self._pick_path(data, lambda v: isinstance(v, str))
        if path is not None:
            _set(data, path, "x" * self.rng.choice([70_000, 300_000, 2_000_000]))
        return data

    def duplicate_entry(self, data: Any) -> Any:
        path = self._pick_path(data, lambda v: isinstance(v, list) and bool(v))
        if path is not None:
            items = _get(data, path)
            items.append(items[self.rng.randrange(len(items))])
        return data

    def hostile_template(self, data: Any) -> Any:
        path = self._pick_path(data, lambda v: isinstance(v, str) and "{" in v)
        if path is not None:
            _set(
                data,
                path,
                self.rng.choice(
                    [
                        "{",
                        "}",
                        "{}",
                        "{{first_name}}",
                        "{nope}",
                        "{first_name.subject}",
                        "{unthanked.date.x}",
                        "{first_name|{x}}",
                        "{0}",
                        "{__class__}",
                        "{first_name!r}",
                        "{first_name:>99999}",
                        "{" * 500,
                    ]
                ),
            )
        return data

    def _pick_condition(self, data: Any) -> list[Any] | None:
        return self._pick_path(data, lambda v: isinstance(v, str) and bool(re.search(r"[<>=]|LIKE|IS ", v)))

    # -- textual mutations -----------------------------------------------------------------------------------

    def yaml_tag(self, text: str) -> str:
        tag = self.rng.choice(
            [
                "!!python/object/apply:os.system ['true']",
                "!custom x",
                "!!binary aGk=",
                "!!timestamp 2020-01-01",
                "!!set {a, b}",
                "!!float nan",
            ]
        )
        return _replace_a_value(self.rng, text, tag)

    def yaml_alias(self, text: str) -> str:
        bomb = "x0: &x0 [a, a, a, a, a, a, a, a, a]\n" + "".join(
            f"x{i + 1}: &x{i + 1} [{', '.join([f'*x{i}'] * 9)}]\n" for i in range(self.rng.choice([2, 5, 9]))
        )
        choice = self.rng.choice(["bomb", "recursive", "simple"])
        if choice == "bomb":
            return bomb + text
        if choice == "recursive":
            return "loop: &loop [*loop]\n" + text
        return _replace_a_value(self.rng, text, "&anchor 7") + "\nagain: *anchor\n"

    def edge_scalar(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        numeric = [i for i, ln in enumerate(lines) if re.match(r"\s*[\w-]+: -?\d+(\.\d+)?\s*$", ln)]
        if not numeric:
            return text
        i = self.rng.choice(numeric)
        lines[i] = lines[i].split(":", 1)[0] + ": " + self.rng.choice(EDGE_SCALARS) + "\n"
        return "".join(lines)

    def nul_byte(self, text: str) -> str:
        at = self.rng.randrange(len(text))
        return text[:at] + self.rng.choice(["\x00", "\x07", "\ufeff", "\udcff"]) + text[at:]

    def truncate(self, text: str) -> str:
        return text[: self.rng.randrange(len(text))]

    def duplicate_key(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        keyed = [i for i, ln in enumerate(lines) if re.match(r"\s*[\w-]+:", ln)]
        if not keyed:
            return text
        i = self.rng.choice(keyed)
        return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])


_STRUCTURED = [
    "rename_feature",
    "relabel",
    "rename_rung",
    "edge_number",
    "edge_number_in_condition",
    "drop_key",
    "empty_list",
    "swap_type",
    "hostile_condition",
    "nest_deeply",
    "chain_ors",
    "many_kinds",
    "huge_text",
    "duplicate_entry",
    "hostile_template",
]
_TEXTUAL = ["yaml_tag", "yaml_alias", "edge_scalar", "nul_byte", "truncate", "duplicate_key"]
# The mutations that keep a file loadable more often (names, labels, numbers, templates, conditions) weigh more.
_LIKELY_VALID = {
    "rename_feature": 3,
    "rename_rung": 3,
    "edge_number": 2,
    "edge_number_in_condition": 3,
    "hostile_condition": 3,
    "nest_deeply": 2,
    "chain_ors": 2,
    "hostile_template": 2,
    "edge_scalar": 2,
}
_WEIGHTS = [_LIKELY_VALID.get(k, 1) for k in _STRUCTURED + _TEXTUAL]


def _walk(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[list[Any], Any]]:
    yield list(path), value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))


def _get(data: Any, path: list[Any]) -> Any:
    for p in path:
        data = data[p]
    return data


def _set(data: Any, path: list[Any], value: Any) -> None:
    _get(data, path[:-1])[path[-1]] = value


def _replace_a_value(rng: random.Random, text: str, new: str) -> str:
    lines = text.splitlines(keepends=True)
    scalar = [i for i, ln in enumerate(lines) if re.match(r"\s*[\w-]+: \S", ln)]
    if not scalar:
        return text
    i = rng.choice(scalar)
    key = lines[i].split(":", 1)[0]
    lines[i] = f"{key}: {new}\n"
    return "".join(lines)


def mutants(count: int, seed: int) -> Iterator[Mutant]:
    base = LADDER.read_text(encoding="utf-8")
    for i in range(count):
        yield Mutator(base, seed * 1_000_003 + i).mutant()


# -- running a mutant --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    command: str
    exit_code: int
    seconds: float
    traceback: bool
    output: str


@dataclass
class Verdict:
    mutant: Mutant
    outcomes: list[Outcome]
    wrote: bool

    @property
    def problems(self) -> list[str]:
        out = [f"{o.command}: exit {o.exit_code}" for o in self.outcomes if o.exit_code not in ALLOWED_EXITS]
        out += [f"{o.command}: traceback" for o in self.outcomes if o.traceback]
        check = self.outcomes[0]
        if check.exit_code == 0:
            out += [
                f"passed rules check, then {o.command} exited {o.exit_code}"
                for o in self.outcomes[1:]
                if o.exit_code != 0
            ]
        if self.wrote:
            out.append("the Contact trust fields changed")
        return out


class Timeout(BaseException):
    """A command ran past its time (a BaseException, so the CLI's `except Exception` cannot make it an exit 70)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(_signum: int, _frame: object) -> None:
        raise Timeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class DemoOrg:
    """A small demo org in `folder`, synced once with the default rules, so its trust fields are set."""

    def __init__(self, folder: Path, contacts: int = 60) -> None:
        self.folder = folder
        self.config = folder / "trust-ladder.toml"
        self.config.write_text(
            f'[local]\ndatabase = "{folder / "crm.duckdb"}"\n[rules]\npath = "{LADDER}"\n'
            f'[state]\npath = "{folder / "state.duckdb"}"\n[engine]\nthreads = 1\n'
        )
        crm = LocalCrm.create(folder / "crm.duckdb")
        try:
            demo.generate(crm, contacts=contacts, seed=11, as_of=AS_OF)
        finally:
            crm.close()
        synced = self.cli("sync", "--as-of", AS_OF.isoformat())
        assert synced.exit_code == 0, synced.output

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(main, ["--config", str(self.config), "--log-format", "json", *args])

    def trust_fields(self) -> list[tuple[Any, ...]]:
        crm = LocalCrm.open(self.folder / "crm.duckdb")
        try:
            return crm.con.execute(
                'SELECT "Id", "Trust_Stage__c", "Trust_Stage_Since__c", "Trust_Flags__c", '
                '"Trust_Next_Step__c", "Trust_Reason__c", "Trust_Rules_Version__c", '
                '"SystemModstamp" FROM "Contact" ORDER BY "Id"'
            ).fetchall()
        finally:
            crm.close()

    def run(self, mutant: Mutant, *, timeout: float = 60.0) -> Verdict:
        path = self.folder / f"mutant-{mutant.seed}.yaml"
        path.write_bytes(mutant.text.encode("utf-8", "surrogatepass"))
        before = self.trust_fields()
        day = AS_OF.isoformat()
        outcomes: list[Outcome] = []
        for name, args in (
            ("rules check", ["rules", "check", str(path)]),
            ("sync --dry-run", ["sync", "--dry-run", "--rules", str(path), "--as-of", day]),
            ("simulate --weeks 2", ["simulate", "--rules", str(path), "--weeks", "2", "--as-of", day]),
        ):
            started = time.perf_counter()
            try:
                with time_limit(timeout):
                    result = self.cli(*args)
                code, output = result.exit_code, result.output + result.stderr
                crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
            except Timeout:
                code, output, crashed = -1, f"timed out after {timeout:g}s", False
            outcomes.append(
                Outcome(name, code, time.perf_counter() - started, crashed or "Traceback" in output, output[-2000:])
            )
        path.unlink()
        return Verdict(mutant, outcomes, wrote=self.trust_fields() != before)
