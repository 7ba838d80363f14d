"""The TOML configuration, validated by pydantic: unknown keys are errors that name the file and the key."""

from __future__ import annotations

import os
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connector import config_spark, files, vocabulary
from connector.errors import ConfigError

DEFAULT_CONFIG_NAME = "trust-ladder.toml"
ENV_CONFIG = "TRUST_LADDER_CONFIG"
MAX_CONFIG_BYTES = files.MIB  # the example config is 5 KiB

MIN_MEMORY = 64 * 1000 * 1000  # below this the engine cannot hold even a small org's working set
_UNITS = {"KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
# ASCII digits and space only (Unicode ones would pass \d and \s): the text is handed to the engine as it is.
_MEMORY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?(KB|MB|GB|KiB|MiB|GiB)$")

# A custom field's API name: a letter, then letters, digits and single underscores, not ending in one; at most 40
# characters; then the __c suffix Salesforce adds to every custom field (and to no standard field).
_CUSTOM_FIELD_RE = re.compile(r"^[A-Za-z](?:_?[A-Za-z0-9])*__c$")
_CUSTOM_FIELD_MAX = 40


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def memory_bytes(text: str) -> int:
    """'1536MB' -> 1536000000, as the engine reads it: KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024."""
    match = _MEMORY_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"'{text}' is not a size: write a number and a unit, like 1536MB or 2GiB")
    return int(Decimal(match.group(1)) * _UNITS[match.group(2)])


def _gigabytes(n: int) -> str:
    return f"{n / 1000**3:.1f} GB" if n >= 1000**3 else f"{n // 1000**2} MB"


class _Strict(BaseModel):
    # No inf or nan: `timeout_seconds = inf` is valid TOML, and would wait forever.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


def _custom_field(name: str) -> str:
    if not name.endswith("__c"):
        raise ValueError(
            f"'{name}' is not a custom field: trust-ladder writes only fields of its own, so each name must be "
            "a custom field's API name, ending in __c (like Trust_Stage__c); standard fields such as "
            "FirstName, OwnerId or Email are never written"
        )
    base = name.removesuffix("__c")
    if len(base) > _CUSTOM_FIELD_MAX:
        raise ValueError(
            f"'{name}' is too long: a custom field's name has at most {_CUSTOM_FIELD_MAX} characters before __c"
        )
    if not _CUSTOM_FIELD_RE.fullmatch(name):
        raise ValueError(
            f"'{name}' is not a valid field API name: start with a letter, then use letters, "
            "digits and single underscores (not at the end), then __c"
        )
    return name


class FieldsSection(_Strict):
    """API names of the Contact fields trust-ladder owns. Only these are ever written, so each must be a custom
    field of its own: a standard field (FirstName, OwnerId, Email...) could hold customer data."""

    stage: str = "Trust_Stage__c"
    stage_since: str = "Trust_Stage_Since__c"
    flags: str = "Trust_Flags__c"
    next_step: str = "Trust_Next_Step__c"
    reason: str = "Trust_Reason__c"
    rules_version: str = "Trust_Rules_Version__c"
    # Optional (issue 19): an org without them gets one notice and the rest is written; "" switches one off.
    held_until: str = "Trust_Held_Until__c"
    previous_stage: str = "Trust_Previous_Stage__c"

    OPTIONAL: ClassVar[tuple[str, ...]] = ("held_until", "previous_stage")

    def owned(self) -> dict[str, str]:
        """[fields] key -> API name of every field in use (an optional one switched off with "" is not)."""
        return {k: v for k, v in self.model_dump().items() if v}

    def required(self) -> dict[str, str]:
        """The six fields every CRM must have."""
        return {k: v for k, v in self.owned().items() if k not in self.OPTIONAL}

    def without(self, logical: list[str]) -> FieldsSection:
        """These optional fields switched off: what a sync uses in an org that lacks them."""
        return self.model_copy(update=dict.fromkeys(logical, ""))

    @field_validator("held_until", "previous_stage")
    @classmethod
    def _optional_field(cls, name: str) -> str:
        return name if name == "" else _custom_field(name)

    @field_validator("stage", "stage_since", "flags", "next_step", "reason", "rules_version")
    @classmethod
    def _required_field(cls, name: str) -> str:
        return _custom_field(name)

    @model_validator(mode="after")
    def _six_distinct_fields(self) -> FieldsSection:
        seen: dict[str, str] = {}
        for key, name in self.owned().items():
            other = seen.get(name.lower())  # Salesforce API names ignore case
            if other is not None:
                raise ValueError(f"{other} and {key} both name {name}: each value needs a field of its own")
            seen[name.lower()] = key
        return self


# Where Spark runs: in this process (local, local[N], local[*]), or a cluster manager's URL. Printable ASCII without
# spaces or quotes: the value is handed to Spark as it is.
_SPARK_MASTER_RE = re.compile(r"^(local(\[([1-9][0-9]{0,3}|\*)\])?|(spark|mesos|k8s)://[!#-&(-~]+|yarn)$")
_APP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


class EngineSection(_Strict):
    """Which engine runs the compiled rules: the embedded columnar engine (DuckDB, the default) or Apache Spark.

    DuckDB: past `memory_limit` it spills to `temp_directory` instead of growing. Spark (`pip install -e '.[spark]'`):
    `master` says where it runs, `app_name` how the cluster's UI names the job, `spark_conf` any other Spark
    setting (driver and executor memory, shuffle partitions; checked by connector.config_spark).
    """

    kind: Literal["duckdb", "spark"] = "duckdb"
    master: str = Field(default="local[2]", max_length=200, pattern=_SPARK_MASTER_RE.pattern)
    app_name: str = Field(default="trust-ladder", max_length=100, pattern=_APP_NAME_RE.pattern)
    memory_limit: str = Field(default="1536MB", max_length=24, pattern=_MEMORY_RE.pattern)  # 64MB to physical memory
    threads: int | None = Field(default=None, strict=True, ge=1)  # default: one per core; at most the cores there are
    temp_directory: Path | None = None  # default: next to the database file
    spark_conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _spark_conf_checked(cls, conf: object, info: ValidationInfo) -> object:
        if not isinstance(conf, dict):
            return conf  # pydantic says what is wrong with it
        local = str(info.data.get("master", "local")).startswith("local")
        return config_spark.check(conf, local=local, ram=physical_memory())

    @field_validator("memory_limit")
    @classmethod
    def _memory_in_bounds(cls, text: str) -> str:
        n = memory_bytes(text)
        if n < MIN_MEMORY:
            raise ValueError(f"{text} is too little for the engine: give it at least 64MB")
        ram = physical_memory()
        if ram is not None and n > ram:
            raise ValueError(
                f"{text} is more than this machine's memory ({_gigabytes(ram)}); past memory_limit the "
                "engine spills to disk, so a limit within the memory is enough"
            )
        return text

    @field_validator("threads")
    @classmethod
    def _threads_within_cores(cls, threads: int | None) -> int | None:
        cores = available_cores()
        if threads is not None and threads > cores:
            raise ValueError(
                f"{threads} threads is more than the {cores} core{'s' if cores != 1 else ''} this "
                "process may use: more would only compete for them; leave threads out for one per core"
            )
        return threads


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
    api_version: str = Field(default="59.0", pattern=r"^[0-9]{2,3}\.0$")
    mirror: Path = Path("trust-ladder-data/salesforce-mirror.duckdb")
    # A query with more rows goes through a Bulk API 2.0 query job. REST pages come five to a Composite call (10,000
    # rows a call) and a Bulk job costs at least 3 calls (create, poll, result set), usually 4: below 30,000 rows
    # REST costs no more calls than Bulk.
    bulk_read_threshold: int = Field(default=30_000, ge=0)
    bulk_write_threshold: int = Field(default=2_000, ge=0)  # more changed contacts: a Bulk API 2.0 update job
    page_size: int = Field(default=2000, ge=200, le=2000)  # REST query batchSize
    bulk_page_records: int = Field(default=1_000_000, ge=1)  # Bulk query maxRecords per result set (streamed to disk)
    bulk_rows_per_job: int = Field(default=150_000, ge=1)  # rows per ingest job (each upload stays < 100 MB)
    overlap_seconds: int = Field(default=300, ge=0)  # incremental pulls re-read this much before the watermark
    budget_fraction: float = Field(default=0.10, gt=0, le=1)  # share of the org's daily API allowance per run
    timeout_seconds: float = Field(default=60.0, gt=0)  # read timeout: the longest wait for an answer to one call
    connect_timeout_seconds: float = Field(default=10.0, gt=0)  # the longest wait to open a connection
    retry_deadline_seconds: float = Field(default=180.0, gt=0)  # one call, its retries and back-offs included
    max_run_seconds: float = Field(default=600.0, gt=0)  # the run stops cleanly (exit 9) after this; < the schedule
    max_attempts: int = Field(default=6, ge=1)  # transient faults: tries per call
    max_wait_seconds: float = Field(default=60.0, ge=0)  # cap of one back-off wait (Retry-After included)
    poll_seconds: float = Field(default=1.0, ge=0)  # the first wait on a Bulk job; each later one doubles
    poll_max_seconds: float = Field(default=30.0, ge=0)  # the longest wait between two polls of a Bulk job
    job_timeout_seconds: float = Field(default=3600.0, gt=0)  # give up on a Bulk job (never past max_run_seconds)


class FollowUpSection(_Strict):
    """Follow-up Tasks (off by default): each open flag becomes one open Task for the contact's owner, its subject
    the flag's next step, found again on later runs by the marker `[TL:<flag id>]` at the end of the subject."""

    enabled: bool = False
    due_in_days: int = Field(default=7, ge=0, le=3650)  # the due date (ActivityDate) of a new task: as-of + N
    subject_prefix: str = Field(default="Trust: ", max_length=80)


TASK_DATE_FIELDS = ("ActivityDate", "CompletedDateTime", "CreatedDate")
EVENT_DATE_FIELDS = ("ActivityDateTime", "StartDateTime", "ActivityDate")


def _date_policy(names: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    if not names:
        raise ValueError(f"give at least one {what} field: {', '.join(allowed)}")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(
            f"{', '.join(repr(n) for n in unknown)}: not a {what} date field; use "
            f"{', '.join(allowed)}, in the order to try them"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{', '.join(twice)} listed more than once")
    return names


class ActivitiesSection(_Strict):
    """How activities are read. `task_date`/`event_date`: the fields an activity's day comes from, the first one
    set wins (a backdated call logged today is dated by its ActivityDate, the day it happened). Private events
    count as contact unless `count_private_events` is false; they are never cited either way."""

    task_date: list[str] = Field(default_factory=lambda: list(TASK_DATE_FIELDS), max_length=3)
    event_date: list[str] = Field(default_factory=lambda: list(EVENT_DATE_FIELDS), max_length=3)
    count_private_events: bool = True

    @field_validator("task_date")
    @classmethod
    def _task_date(cls, names: list[str]) -> list[str]:
        return _date_policy(names, TASK_DATE_FIELDS, "Task")

    @field_validator("event_date")
    @classmethod
    def _event_date(cls, names: list[str]) -> list[str]:
        return _date_policy(names, EVENT_DATE_FIELDS, "Event")


# [warehouse]: where each Salesforce object's copy lives, by its key here.
WAREHOUSE_OBJECTS = {
    "contact": "Contact",
    "task": "Task",
    "event": "Event",
    "email_message": "EmailMessage",
    "task_relation": "TaskRelation",
    "event_relation": "EventRelation",
    "opportunity": "Opportunity",
    "opportunity_contact_role": "OpportunityContactRole",
}
# [catalog.]db.table: qualified, so that the objects' own temp views (Contact, Task...) never shadow a table.
_TABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}$")
_COLUMN_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
WarehouseColumn = Annotated[str, Field(pattern=_COLUMN_RE)]
_Location = Annotated[str, Field(min_length=1, max_length=1000)]
_Mapping = Annotated[dict[str, WarehouseColumn], Field(max_length=200)]


class WarehouseSection(_Strict):
    """The warehouse copy of Salesforce that `[engine] kind = "spark"` reads in place. Each object is a catalog table
    (`format = "table"`: `db.table`) or a folder of Parquet or Delta files (a path, relative to the config file, or a
    URL such as s3a://...). Contact, Task and Event are needed; EmailMessage, TaskRelation and EventRelation are left
    out when the org has none (no Enhanced Email, no Shared Activities); Opportunity and OpportunityContactRole are
    read by `calibrate` alone, for the outcomes that read won deals. `naming` says how columns are named: as the
    Salesforce API names, or as Fivetran writes them (snake_case, `_fivetran_deleted`, `_fivetran_active`); a column
    named otherwise is given in `[warehouse.columns.<object>]` as API name = column. `copied_at`: the Contact column
    that says when each row was copied (default `_fivetran_synced` for Fivetran, SystemModstamp otherwise)."""

    format: Literal["table", "parquet", "delta"] = "table"
    naming: Literal["salesforce", "fivetran"] = "salesforce"
    contact: _Location
    task: _Location
    event: _Location
    email_message: _Location | None = None
    task_relation: _Location | None = None
    event_relation: _Location | None = None
    opportunity: _Location | None = None  # with opportunity_contact_role: deals, read by `calibrate` alone
    opportunity_contact_role: _Location | None = None
    copied_at: WarehouseColumn | None = None
    columns: dict[Literal[tuple(WAREHOUSE_OBJECTS)], _Mapping] = Field(default_factory=dict)  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _locations_and_fields(self) -> WarehouseSection:
        for key in WAREHOUSE_OBJECTS:
            where = getattr(self, key)
            if where is None:
                continue
            if any(ord(ch) < 32 for ch in where):
                raise ValueError(f"{key}: a location is one line of printable text")
            if self.format == "table" and not _TABLE_NAME_RE.fullmatch(where):
                raise ValueError(
                    f"{key} = '{where}' is not a table name: with format = \"table\" give db.table (letters, digits, "
                    '_); for files set format = "parquet" or "delta"'
                )
        for key, mapping in self.columns.items():
            obj = WAREHOUSE_OBJECTS[key]
            known = vocabulary.column_names(obj)
            for name in mapping:
                if name not in known and not (obj == "Contact" and name.endswith("__c")):
                    raise ValueError(
                        f"[warehouse.columns.{key}] {name}: not a {obj} field trust-ladder reads; the keys are "
                        f"Salesforce API names ({', '.join(known[:6])}, ...), the values the warehouse's columns"
                    )
        return self

    def objects(self) -> dict[str, str]:
        """Salesforce object -> where its copy is, for the objects this warehouse has."""
        return {obj: getattr(self, key) for key, obj in WAREHOUSE_OBJECTS.items() if getattr(self, key) is not None}


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class NotifySection(_Strict):
    """Alerts on a failed or partial `sync` (connector.notify): a webhook that takes Slack's incoming-webhook JSON
    (`{"text": ...}`), a mail command, or both. The webhook URL carries its own token, so it is a secret: the
    config names the environment variable that holds it, as it does for every other secret."""

    webhook_url_env: str | None = Field(default=None, pattern=_ENV_NAME_RE.pattern)
    mail_command: list[str] = Field(default_factory=list, max_length=64)  # argv, no shell; the message on stdin
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)  # each channel's longest wait

    @field_validator("mail_command", mode="after")
    @classmethod
    def _program_first(cls, value: list[str]) -> list[str]:
        if value and not value[0].strip():
            raise ValueError('the first item is the program to run, e.g. ["mail", "-s", "subject", "ops@example.com"]')
        return value


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
    activities: ActivitiesSection = Field(default_factory=ActivitiesSection)
    notify: NotifySection = Field(default_factory=NotifySection)
    salesforce: SalesforceSection | None = Field(default=None, validate_default=True)
    warehouse: WarehouseSection | None = None  # the Salesforce copy the Spark engine reads
    source: Path | None = None  # the file this came from; set by `load`

    @field_validator("salesforce", mode="after")
    @classmethod
    def _salesforce_when_chosen(cls, value: SalesforceSection | None, info: ValidationInfo) -> SalesforceSection | None:
        crm = info.data.get("crm")
        if value is None and crm is not None and crm.backend == "salesforce":
            raise PydanticCustomError(
                "missing_section", 'a [salesforce] section is required when [crm] backend = "salesforce"'
            )
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
        text = files.read_text(path, MAX_CONFIG_BYTES, what="config file")
    except files.Unreadable as exc:
        where = f"{path}:{exc.line}:{exc.col}" if (exc.line, exc.col) != (1, 1) else str(path)
        raise ConfigError(f"{where}: {exc.message}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number; arrays nested a thousand deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ConfigError(f"{path}: not valid TOML: {reason}") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: [{key}] {msg}")
        raise ConfigError("\n".join(problems)) from None
    return cfg.model_copy(update={"source": path.resolve()})
