"""Which rule file a command uses, and the reality check of its rungs and flags against the CRM's picklists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from connector.config import Config, FieldsSection
from connector.errors import Finding, RuleError
from connector.ruleset import compiler
from connector.ruleset.compiler import RuleSet

if TYPE_CHECKING:
    from connector.crm import CrmBackend


def rules_path(cfg: Config) -> Path:
    """The configured rule file; when it is the default and absent here, the copy shipped with the package."""
    path = cfg.resolve(cfg.rules.path)
    if not path.exists() and cfg.rules.path == compiler_default():
        # A wheel carries the default rules inside the package; a source checkout has them beside it.
        here = Path(__file__).resolve().parent.parent
        for shipped in (here / "_default_rules" / "ladder.yaml", here.parent / "rules" / "ladder.yaml"):
            if shipped.exists():
                return shipped
    return path


def compiler_default() -> Path:
    return Path("rules/ladder.yaml")


def load_rules(cfg: Config, override: Path | None = None) -> RuleSet:
    return compiler.load(override or rules_path(cfg))


def check_crm_picklists(rules: RuleSet, crm: CrmBackend, fields: FieldsSection) -> None:
    """`check_picklists` against a CRM's picklists. A CRM that remembers its describe (Salesforce, for a day) is
    asked for a fresh one before a rung or flag is refused: an admin who has just added the value is not refused
    on the strength of yesterday's describe."""
    try:
        check_picklists(rules, crm.picklist_values(), fields)
    except RuleError:
        refresh: Callable[[], bool] | None = getattr(crm, "refresh_describe", None)
        if refresh is None or not refresh():
            raise
        check_picklists(rules, crm.picklist_values(), fields)


def check_picklists(rules: RuleSet, picklists: dict[str, list[str]], fields: FieldsSection) -> None:
    """Reality check: every rung and flag must be a value the CRM's picklists accept."""
    findings: list[Finding] = []
    stages = picklists.get(fields.stage)
    if stages is not None:
        for rung in rules.rungs:
            if rung.name not in stages:
                findings.append(
                    rules.source.finding(
                        ("rungs", rung.index, "name"),
                        f"rung '{rung.name}' is not a value of the CRM picklist {fields.stage} "
                        f"({', '.join(stages)}); add it there or rename the rung",
                    )
                )
    labels = picklists.get(fields.flags)
    if labels is not None:
        for i, flag in enumerate(rules.flags):
            if flag.label not in labels:
                findings.append(
                    rules.source.finding(
                        ("flags", i, "label"),
                        f"flag label '{flag.label}' is not a value of the CRM picklist {fields.flags} "
                        f"({', '.join(labels)})",
                    )
                )
    if findings:
        raise RuleError(findings)
