"""The TOML configuration, validated by pydantic: unknown keys are errors that name the file and the key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from connector.errors import ConfigError

DEFAULT_CONFIG_NAME = "trust-ladder.toml"
ENV_CONFIG = "TRUST_LADDER_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CrmSection(_Strict):
    backend: Literal["local", "salesforce"] = "local"


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


class SalesforceSection(_Strict):
    """Sign-in, transport and budget for the Salesforce backend. Secrets are never here: only the NAMES of the
    environment variables that hold them."""

    auth: Literal["password", "jwt", "client_credentials", "session"] = "password"
    domain: str = "login"  # login (production), test (sandbox), or a My Domain prefix such as "acme.my"
    username: str | None = None  # password and jwt
    password_env: str = "SF_PASSWORD"  # noqa: S105 - the NAME of an environment variable
    security_token_env: str = "SF_SECURITY_TOKEN"  # noqa: S105 - the NAME of an environment variable
    consumer_key_env: str = "SF_CONSUMER_KEY"  # jwt and client_credentials
    consumer_secret_env: str = "SF_CONSUMER_SECRET"  # noqa: S105 - the NAME of an environment variable  # client_credentials
    private_key_file: Path | None = None  # jwt: the connected app's private key (PEM)
    access_token_env: str = "SF_ACCESS_TOKEN"  # noqa: S105 - a variable name; session: `sf org display`
    instance_url: str | None = None  # session: e.g. https://acme.my.salesforce.com
    api_version: str = Field(default="59.0", pattern=r"^\d+\.0$")
    mirror: Path = Path("trust-ladder-data/salesforce-mirror.duckdb")
    bulk_read_threshold: int = Field(default=10_000, ge=0)  # a query with more rows goes through Bulk API 2.0
    bulk_write_threshold: int = Field(default=2_000, ge=0)  # more changed contacts: a Bulk API 2.0 update job
    page_size: int = Field(default=2000, ge=200, le=2000)  # REST query batchSize
    bulk_page_records: int = Field(default=250_000, ge=1)  # Bulk query maxRecords per result set
    bulk_rows_per_job: int = Field(default=150_000, ge=1)  # rows per ingest job (each upload stays < 100 MB)
    overlap_seconds: int = Field(default=300, ge=0)  # incremental pulls re-read this much before the watermark
    budget_fraction: float = Field(default=0.10, gt=0, le=1)  # share of the org's daily API allowance per run
    timeout_seconds: float = Field(default=60.0, gt=0)  # read timeout: the longest wait for an answer to one call
    connect_timeout_seconds: float = Field(default=10.0, gt=0)  # the longest wait to open a connection
    retry_deadline_seconds: float = Field(default=180.0, gt=0)  # one call, its retries and back-offs included
    max_run_seconds: float = Field(default=600.0, gt=0)  # the run stops cleanly (exit 9) after this; < the schedule
    max_attempts: int = Field(default=6, ge=1)  # transient faults: tries per call
    max_wait_seconds: float = Field(default=60.0, ge=0)  # cap of one back-off wait (Retry-After included)
    poll_seconds: float = Field(default=2.0, ge=0)  # Bulk job polling interval
    job_timeout_seconds: float = Field(default=3600.0, gt=0)  # give up on a Bulk job (never past max_run_seconds)


class FollowUpSection(_Strict):
    """Follow-up Tasks (off by default): each open flag becomes one open Task for the contact's owner, its subject
    the flag's next step, found again on later runs by the marker `[TL:<flag id>]` at the end of the subject."""

    enabled: bool = False
    due_in_days: int = Field(default=7, ge=0, le=3650)  # the due date (ActivityDate) of a new task: as-of + N
    subject_prefix: str = Field(default="Trust: ", max_length=80)


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
    follow_up: FollowUpSection = Field(default_factory=FollowUpSection)
    salesforce: SalesforceSection | None = Field(default=None, validate_default=True)
    source: Path | None = None  # the file this came from; set by `load`

    @field_validator("salesforce", mode="after")
    @classmethod
    def _salesforce_when_chosen(cls, value: SalesforceSection | None, info: ValidationInfo) -> SalesforceSection | None:
        crm = info.data.get("crm")
        if value is None and crm is not None and crm.backend == "salesforce":
            raise PydanticCustomError(
                "missing_section", 'a [salesforce] section is required when [crm] backend = "salesforce"')
        return value

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
