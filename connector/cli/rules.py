"""`trust-ladder rules ...`: the rule-file tools for admins (check, test, schema).

Exit codes fit CI and pre-commit: 0 when clean (warnings allowed unless --strict), 1 when rule tests fail or
coverage is below --min-coverage, 4 when a rule or test file is invalid (or, with --strict, has warnings).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import click
import duckdb

from connector.cli.app import DATE
from connector.commands import rule_tests as testing
from connector.commands import sync
from connector.commands.rulefile import check_crm_picklists
from connector.config import Config
from connector.crm.local.store import LocalCrm
from connector.errors import Finding, RuleError
from connector.exit_codes import ExitCode
from connector.ruleset import compiler, lint, lint_data, loader
from connector.ruleset.schema import FEATURE_TYPES, NAME_RE, RuleFile

SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"


@click.group()
def rules() -> None:
    """Rule-file tools for admins: check (validate and lint), test (rule unit tests), schema (for editors)."""


# -- check -----------------------------------------------------------------------------------------------------


@rules.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one `file:line:col: severity: message` per finding; json: for tools.",
)
@click.option("--strict", is_flag=True, help="Warnings fail the check too (exit 4).")
@click.option("--no-data", is_flag=True, help="Skip the checks against the local CRM (picklists, kinds in use).")
@click.option(
    "--data",
    "coverage",
    is_flag=True,
    help="Also read the local CRM's activities through the kinds: how many each kind matches, how many match "
    "none, and the most common unmatched and short subjects (what the rules cannot read).",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="spark: also render every statement the rules make as Spark SQL, and report what cannot run there "
    "(no Spark needed).",
)
@click.option(
    "--as-of",
    type=DATE,
    default=None,
    help="With outcomes in the rules: the day the calibration against the local CRM counts back from (default: today).",
)
@click.pass_obj
def check(
    cfg: Config,
    files: tuple[Path, ...],
    fmt: str,
    strict: bool,
    no_data: bool,
    coverage: bool,
    engine: str,
    as_of: dt.date | None,
) -> None:
    """Validate and lint rule files (default: the configured one); rule test files are validated too.

    FILES may be folders: every *.yaml / *.yml rule file in one is checked, its rule test files skipped (`rules
    test` runs those).

    Errors (exit 4) are what loading refuses, plus what is clearly broken: a rung no contact can reach, a
    condition that is never true. Warnings are likely mistakes: a condition that is always true, thresholds out
    of order, features or kinds never used, a kind that matches no activity in the local CRM, a rung not clearly
    better than the one below on an outcome the rules declare (calibrate, on the local CRM's history: not better,
    or better with overlapping 95% intervals), when both rungs have at least 200 contact-months. With `--engine
    spark`, also an error for each construct with no faithful Spark rendering, at the rule text that made it.
    """
    if coverage and no_data:
        raise click.UsageError("--data reads the local CRM, which --no-data skips: give one of them")
    targets = _rule_files(list(files) or [_shown(sync.rules_path(cfg))])
    data = None if no_data else _Data(cfg, as_of or dt.date.today())
    findings: list[Finding] = []
    checked: list[dict[str, Any]] = []
    try:
        for path in targets:
            found, info = _check_one(path, data, spark=engine == "spark")
            findings.extend(found)
            if coverage and data is not None and info.get("version"):
                info["data"] = data.coverage(compiler.compile_located(loader.load_file(path)))
            checked.append(info)
    finally:
        if data is not None:
            data.close()
    findings = sorted(dict.fromkeys(findings), key=lambda f: (f.path, f.line, f.col))  # a test file repeats its rules'
    counts = Counter(f.severity for f in findings)
    failed = bool(counts[lint.ERROR]) or (strict and bool(counts[lint.WARNING]))
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "ok": not failed,
                    "files": checked,
                    "summary": {
                        "errors": counts[lint.ERROR],
                        "warnings": counts[lint.WARNING],
                        "infos": counts[lint.INFO],
                    },
                    "findings": [
                        {"path": f.path, "line": f.line, "col": f.col, "severity": f.severity, "message": f.message}
                        for f in findings
                    ],
                },
                indent=2,
            )
        )
    else:
        for f in findings:
            click.echo(str(f))
        for info in checked:
            if info.get("data") is not None:
                click.echo(_coverage_text(info["path"], info["data"]))
        click.echo(_check_summary(checked, counts, failed=failed))
    if failed:
        click.get_current_context().exit(int(ExitCode.RULES))


def _rule_files(paths: list[Path]) -> list[Path]:
    """Files as given; a folder's *.yaml / *.yml files, rule test files left out."""
    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
        rule_files = [f for f in found if not _is_test_file(f)]
        if not rule_files:
            raise RuleError(
                [
                    Finding(
                        str(path),
                        1,
                        1,
                        "no rule file (*.yaml) in this folder; name a rule file, or the folder that holds one",
                    )
                ]
            )
        out.extend(rule_files)
    return out


def _is_test_file(path: Path) -> bool:
    try:
        return testing.is_test_file(loader.load_file(path).data)
    except RuleError:
        return False  # a broken file is checked, and its findings shown


def _check_one(path: Path, data: _Data | None, *, spark: bool) -> tuple[list[Finding], dict[str, Any]]:
    info: dict[str, Any] = {"path": str(path), "type": "rules"}
    try:
        located = loader.load_file(path)
    except RuleError as exc:
        return exc.findings, info
    if testing.is_test_file(located.data):
        info["type"] = "tests"
        try:
            spec, _, rules_set = testing.load(path)
        except RuleError as exc:
            return exc.findings, info
        info.update(cases=len(spec.cases), rules=rules_set.path)
        return [], info
    try:
        rules_set = compiler.compile_located(located)
    except RuleError as exc:
        return exc.findings, info
    info.update(
        version=rules_set.version,
        kinds=len(rules_set.kinds),
        features=len(rules_set.features),
        rungs=len(rules_set.rungs),
        flags=len(rules_set.flags),
    )
    found = lint.lint(rules_set)
    if data is not None:
        found.extend(data.check(rules_set))
    if spark:
        from connector.ruleset import lint_spark

        refused, rendered = lint_spark.findings(rules_set)
        found.extend(refused)
        info["spark_statements"] = rendered
    return found, info


def _check_summary(checked: list[dict[str, Any]], counts: Counter[str], *, failed: bool) -> str:
    kinds = Counter(c["type"] for c in checked)
    what = ", ".join(
        f"{n} {'rule' if t == 'rules' else 'rule test'} file{'s' if n != 1 else ''}" for t, n in sorted(kinds.items())
    )

    def n(sev: str, word: str) -> str:
        return f"{counts[sev]} {word}{'s' if counts[sev] != 1 else ''}"

    verdict = "failed" if failed else "passed"
    if failed and not counts[lint.ERROR]:
        verdict = "failed (--strict: warnings fail)"
    found = f"{n(lint.ERROR, 'error')}, {n(lint.WARNING, 'warning')}, {counts[lint.INFO]} info"
    spark = sum(int(c.get("spark_statements", 0)) for c in checked)
    rendered = f" Rendered {spark} statements as Spark SQL." if spark else ""
    return f"Checked {what}: {found}; {verdict}.{rendered}"


def _coverage_text(path: str, cov: dict[str, Any]) -> str:
    """The --data section: kinds by the activities they read, the unread share, and the subjects behind it."""
    total = cov["activities"]

    def share(n: int) -> str:
        return f"{n:>9,}  {100 * n / total:5.1f}%" if total else f"{n:>9,}"

    width = max([len(k) for k in cov["per_kind"]] + [len("no kind")])
    head = f"{path}: {total:,} activities in the local CRM (each once, however many contacts took part; every date)"
    lines = [f"{head}, read by the kinds:"]
    lines += [f"  {name:<{width}} {share(n)}" for name, n in cov["per_kind"].items()]
    lines.append(f"  {'no kind':<{width}} {share(cov['unmatched'])}   <- what the rules cannot read")
    lines.append(_reconciled(cov))
    for title, key in (
        ("Most common subjects no kind matches:", "unmatched_subjects"),
        ("Most common short subjects (one or two words say little of what happened):", "short_subjects"),
    ):
        lines.append(title)
        lines += [f"  {n:>7,}  {subject}" for subject, n in cov[key]] or ["  (none)"]
    return "\n".join(lines)


def _reconciled(cov: dict[str, Any]) -> str:
    """How this count becomes a sync's "activities classified", step by step: a new user running the demo and then
    this check sees two figures for the same org and should not have to guess why they differ."""
    day = cov["as_of"]
    return (
        f"A sync as of {day} reads {cov['by_day']:,} of them: the {cov['activities']:,} less the "
        f"{cov['unmatched']:,} of no kind and the {cov['later']:,} dated after {day}. It counts each once per contact "
        f"it is read for (a shared one for each who took part): its summary's {cov['sync_rows']:,} activities "
        "classified."
    )


class _Data:
    """The configured local CRM, opened read-only on first use, for checks against real data."""

    def __init__(self, cfg: Config, as_of: dt.date) -> None:
        self.cfg = cfg
        self.as_of = as_of
        self.crm: LocalCrm | None = None
        self.skipped: str | None = None
        self.opened = False

    def _open(self) -> LocalCrm | None:
        if self.opened:
            return self.crm
        self.opened = True
        path = self.cfg.resolve(self.cfg.local.database)
        if self.cfg.crm.backend != "local":
            self.skipped = f"the CRM is {self.cfg.crm.backend}, not local"
        elif not path.exists():
            self.skipped = f"no local CRM at {path}"
        else:
            try:
                self.crm = LocalCrm(duckdb.connect(str(path), read_only=True), path)
                self.crm.prepare(self.cfg.fields)
            except (duckdb.Error, RuleError) as exc:
                self.skipped = f"cannot read the local CRM at {path} ({str(exc).splitlines()[0]})"
                self.close()
            except Exception:
                self.close()
                raise
        return self.crm

    def check(self, rules_set: compiler.RuleSet) -> list[Finding]:
        crm = self._open()
        if crm is None:
            return [
                rules_set.source.finding(
                    (),
                    f"{self.skipped}: the checks against its data (picklist values, "
                    "kinds that match no activity) were skipped",
                    severity=lint.INFO,
                )
            ]
        found: list[Finding] = []
        try:
            check_crm_picklists(rules_set, crm, self.cfg.fields)
        except RuleError as exc:
            found.extend(exc.findings)
        found.extend(lint_data.data_findings(rules_set, crm.con, f"the local CRM {crm.path}"))
        found.extend(_unearned(rules_set, crm, self.as_of))
        return found

    def coverage(self, rules_set: compiler.RuleSet) -> dict[str, Any] | None:
        """`lint_data.coverage` of the local CRM as plain data (for text and JSON), or None without one."""
        crm = self._open()
        if crm is None:
            return None
        return dataclasses.asdict(lint_data.coverage(rules_set, crm.con, self.as_of))

    def close(self) -> None:
        if self.crm is not None:
            self.crm.close()
            self.crm = None


# -- test ------------------------------------------------------------------------------------------------------


@rules.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="PERCENT",
    help="Fail (exit 1) when fewer rungs, flags and kinds than this are exercised.",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Test this rule file instead of the one each test file names (e.g. an edited copy).",
)
@click.pass_obj
def test_cmd(cfg: Config, paths: tuple[Path, ...], min_coverage: float | None, rules_file: Path | None) -> None:
    """Run rule unit tests: YAML files of contact histories and the rung, flags and next step they must get.

    PATHS are test files or folders (default: the tests/ folder beside the configured rule file). Exit 0 when
    all pass, 1 when a case fails or coverage is below --min-coverage, 4 when a test or rule file is invalid
    or no test file is found.
    """
    targets = list(paths) or [_shown(sync.rules_path(cfg).parent / "tests")]
    report = testing.run(targets, rules_override=rules_file)
    click.echo(testing.render(report, min_coverage=min_coverage))
    ctx = click.get_current_context()
    if report.findings:
        ctx.exit(int(ExitCode.RULES))
    if report.failed or (min_coverage is not None and report.percent < min_coverage):
        ctx.exit(int(ExitCode.PARTIAL))


def _shown(path: Path) -> Path:
    """A default path as an admin would type it: relative to where they stand, when it is below."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


# -- schema ----------------------------------------------------------------------------------------------------


@rules.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the schema to this file (default: print it).",
)
def schema(out: Path | None) -> None:
    """The JSON Schema of rule files, for editors (yaml-language-server, VS Code, IntelliJ)."""
    text = schema_text()
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out}")


def rule_file_schema() -> dict[str, Any]:
    """`RuleFile`'s JSON Schema, with what pydantic cannot say: one feature type, name shapes."""
    doc = RuleFile.model_json_schema()
    out: dict[str, Any] = {"$schema": SCHEMA_URI, "title": "trust-ladder rule file"}
    out.update({k: v for k, v in doc.items() if k != "title"})
    props = out["properties"]
    names = {"pattern": NAME_RE.pattern}
    props["kinds"]["propertyNames"] = names
    props["features"]["propertyNames"] = names
    feature = out["$defs"]["Feature"]
    feature["oneOf"] = [{"required": [t], "title": t} for t in FEATURE_TYPES]
    return out


def schema_text() -> str:
    return json.dumps(rule_file_schema(), indent=2, ensure_ascii=False) + "\n"


def _unearned(rules_set: compiler.RuleSet, crm: LocalCrm, as_of: dt.date) -> list[Finding]:
    """A rung not clearly better than the one below on the CRM's own history (calibrate), with enough
    contact-months on both to say so."""
    from connector.commands import calibrate as calibrate_mod
    from connector.commands.calibrate_text import interval
    from connector.commands.calibration import MIN_OBSERVATIONS, NOT_BETTER, unearned

    if not rules_set.outcomes:
        return []
    cal = calibrate_mod.calibrate(crm.con, rules_set, as_of)
    out = []
    for u in unearned(cal):
        direction = "above" if u.good else "below"
        how = (
            f"is not {direction} '{u.below}'"
            if u.standing == NOT_BETTER
            else f"is {direction} '{u.below}' but not clearly (the 95% intervals overlap: may be chance)"
        )
        rate, below = u.rate.rate or 0.0, u.rate_below.rate or 0.0
        out.append(
            rules_set.source.finding(
                ("rungs", u.rung, "name"),
                f"rung '{u.rung_name}' {how} on outcome '{u.outcome}' in the local CRM's history: "
                f"{100 * rate:.1f}% ({interval(u.rate)}) of {u.rate.n:,} contact-months against "
                f"{100 * below:.1f}% ({interval(u.rate_below)}) of {u.rate_below.n:,}; warned because both rungs "
                f"have at least {MIN_OBSERVATIONS} contact-months; see `trust-ladder calibrate` for which criteria "
                "carry the signal",
                severity=lint.WARNING,
            )
        )
    return out
