"""What running rule tests found: each case's result, the coverage of each rule file, and the text shown for them."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.errors import Finding


@dataclass
class CaseResult:
    file: str
    name: str
    line: int
    passed: bool
    problems: list[str] = field(default_factory=list)
    trace: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class Coverage:
    """Which rungs, flags and kinds of one rule file some case exercised."""

    rules_path: str
    rules_version: str
    rungs: dict[str, bool]
    flags: dict[str, bool]
    kinds: dict[str, bool]

    def merge(self, other: Coverage) -> None:
        for mine, theirs in ((self.rungs, other.rungs), (self.flags, other.flags), (self.kinds, other.kinds)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, False) or v

    @property
    def covered(self) -> int:
        return sum(sum(d.values()) for d in (self.rungs, self.flags, self.kinds))

    @property
    def total(self) -> int:
        return len(self.rungs) + len(self.flags) + len(self.kinds)

    def missing(self) -> list[str]:
        return (
            [f"rung {k}" for k, v in self.rungs.items() if not v]
            + [f"flag {k}" for k, v in self.flags.items() if not v]
            + [f"kind {k}" for k, v in self.kinds.items() if not v]
        )


@dataclass
class Report:
    results: list[CaseResult] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # invalid test or rule files
    seconds: float = 0.0

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    @property
    def percent(self) -> float:
        total = sum(c.total for c in self.coverage)
        return 100.0 * sum(c.covered for c in self.coverage) / total if total else 0.0


def _rule(title: str, char: str = "=", width: int = 100) -> str:
    title = f" {title} " if title else ""
    left = (width - len(title)) // 2
    return char * left + title + char * (width - left - len(title))


def render(report: Report, *, min_coverage: float | None = None) -> str:
    lines: list[str] = []
    lines.extend(str(f) for f in report.findings)
    n = len(report.results)
    if report.results:
        lines.append(f"collected {n} case{'s' if n != 1 else ''}")
        lines.append("")
    lines.extend(f"{r.id} {'PASSED' if r.passed else 'FAILED'}" for r in report.results)
    if report.failed:
        lines += ["", _rule("FAILURES")]
        for r in report.failed:
            lines.append(_rule(r.id, "_"))
            lines.append(f"{r.file}:{r.line}: case '{r.name}'")
            lines.extend(f"  {p}" for p in r.problems)
            lines.append("")
            lines.extend(f"    {t}" if t else "" for t in r.trace.splitlines())
            lines.append("")
    if report.coverage:
        lines += ["", _rule("coverage", "-")]
        for c in report.coverage:
            pct = 100.0 * c.covered / c.total if c.total else 0.0
            lines.append(
                f"{c.rules_path} ({c.rules_version}): {pct:.1f}% - rungs {sum(c.rungs.values())}/"
                f"{len(c.rungs)}, flags {sum(c.flags.values())}/{len(c.flags)}, kinds "
                f"{sum(c.kinds.values())}/{len(c.kinds)}"
            )
            missing = c.missing()
            lines.append(
                f"  not exercised: {', '.join(missing)}" if missing else "  every rung, flag and kind is exercised"
            )
        if min_coverage is not None and report.percent < min_coverage:
            lines.append(f"coverage {report.percent:.1f}% is below --min-coverage {min_coverage:g}%")
    failed, passed = len(report.failed), n - len(report.failed)
    parts = [f"{failed} failed"] if failed else []
    parts += [f"{passed} passed"] if passed or not failed else []
    if report.findings:
        parts.append(f"{len(report.findings)} error{'s' if len(report.findings) != 1 else ''} in test or rule files")
    lines += ["", _rule(f"{', '.join(parts)} in {report.seconds:.2f}s")]
    return "\n".join(lines)
