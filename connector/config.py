"""The TOML configuration, validated by pydantic: unknown keys are errors that name the file and the key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.errors import ConfigError

DEFAULT_CONFIG_NAME = "trust-ladder.toml"
ENV_CONFIG = "TRUST_LADDER_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrmSection(_Strict):
    backend: Literal["local"] = "local"


class LocalSection(_Strict):
    database: Path = Path("trust-ladder-data/crm.duckdb")


class RulesSection(_Strict):
    path: Path = Path("rules/ladder.yaml")
    # audit: syncs compute and record what they would write (see `status`) and write nothing, until switched
    # to enforce. A way to let a new rule set run on real data for a while before it reaches the CRM.
    mode: Literal["enforce", "audit"] = "enforce"


class StateSection(_Strict):
    path: Path = Path("trust-ladder-data/state.duckdb")


class FieldsSection(_Strict):
    """API names of the Contact fields trust-ladder owns. Only these are ever written."""

    stage: str = "Trust_Stage__c"
    stage_since: str = "Trust_Stage_Since__c"
    flags: str = "Trust_Flags__c"
    next_step: str = "Trust_Next_Step__c"
    reason: str = "Trust_Reason__c"
    rules_version: str = "Trust_Rules_Version__c"


class EngineSection(_Strict):
    """The embedded columnar engine. Past `memory_limit` it spills to `temp_directory` instead of growing."""

    memory_limit: str = Field(default="1536MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")
    threads: int | None = Field(default=None, ge=1)  # default: one per core
    temp_directory: Path | None = None  # default: next to the database file


class LogSection(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(_Strict):
    crm: CrmSection = Field(default_factory=CrmSection)
    local: LocalSection = Field(default_factory=LocalSection)
    rules: RulesSection = Field(default_factory=RulesSection)
    state: StateSection = Field(default_factory=StateSection)
    fields: FieldsSection = Field(default_factory=FieldsSection)
    log: LogSection = Field(default_factory=LogSection)
    engine: EngineSection = Field(default_factory=EngineSection)
    source: Path | None = None  # the file this came from; set by `load`

    def resolve(self, path: Path) -> Path:
        """Relative paths in a config file are relative to that file, as in most tools."""
        if path.is_absolute():
            return path
        base = self.source.parent if self.source else Path.cwd()
        return base / path


def load(path: Path | None = None) -> Config:
    """Load the config: an explicit path, else $TRUST_LADDER_CONFIG, else ./trust-ladder.toml, else defaults."""
    if path is None and os.environ.get(ENV_CONFIG):
        path = Path(os.environ[ENV_CONFIG])
    if path is None:
        candidate = Path.cwd() / DEFAULT_CONFIG_NAME
        if not candidate.exists():
            return Config()
        path = candidate
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{path}: [{key}] {msg}")
        raise ConfigError("\n".join(problems)) from None
    return cfg.model_copy(update={"source": path.resolve()})
