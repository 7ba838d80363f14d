"""`[engine] spark_conf`: Spark settings passed to the session as they are, so each is checked first.

A million contacts on one machine needs more driver memory than Spark's 1g default, and a cluster wants its
executor memory and shuffle partitions set; those are Spark's own settings, so the table takes Spark's keys
(`spark.driver.memory = "8g"`) rather than inventing names. Checked: keys are `spark.` settings; sizes are Spark
sizes within bounds (a local driver no larger than this machine); counts are whole numbers within bounds; values
are short printable text. The settings the engine's results depend on (its time zone, ANSI mode, no `${...}`
substitution in statement text) and the ones `[engine]` names itself (`master`, `app_name`) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_SETTINGS = 64
_KEY_RE = re.compile(r"^spark\.[A-Za-z0-9_.-]{1,200}$")
_VALUE_RE = re.compile(r"^[ -~]{1,1000}$")  # printable ASCII: the value goes to the JVM as it is
_SIZE_RE = re.compile(r"^([1-9][0-9]{0,9})([kmgt])b?$", re.IGNORECASE)  # Spark's "512m", "8g", "1t"
_UNIT = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

# The engine sets these, and places contacts right only as it sets them.
OWNED = {
    "spark.master": "set [engine] master instead",
    "spark.app.name": "set [engine] app_name instead",
    "spark.sql.session.timeZone": "the engine runs in UTC, so that dates never move with a machine's zone",
    "spark.sql.ansi.enabled": "the engine runs with ANSI mode on, so a bad value is an error as on DuckDB",
    "spark.sql.variable.substitute": "the engine turns ${...} substitution off: rule text would be read as a variable",
}
# Sizes: the least that lets Spark start, the most any machine has.
SIZES = {
    "spark.driver.memory": (512 * 1024**2, 1024**4),
    "spark.executor.memory": (512 * 1024**2, 1024**4),
    "spark.driver.memoryOverhead": (1024**2, 1024**4),
    "spark.executor.memoryOverhead": (1024**2, 1024**4),
    "spark.driver.maxResultSize": (1024**2, 1024**4),
    "spark.memory.offHeap.size": (1024**2, 1024**4),
}
COUNTS = {
    "spark.sql.shuffle.partitions": (1, 100_000),
    "spark.default.parallelism": (1, 100_000),
    "spark.executor.cores": (1, 1024),
    "spark.executor.instances": (1, 100_000),
    "spark.driver.cores": (1, 1024),
}


def size_bytes(text: str) -> int:
    """'8g' -> 8589934592, as Spark reads a size (k, m, g, t in 1024s)."""
    match = _SIZE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"'{text}' is not a Spark size: write a whole number and k, m, g or t, like 512m or 8g")
    return int(match.group(1)) * _UNIT[match.group(2).lower()]


def check(conf: Mapping[str, object], *, local: bool, ram: int | None) -> dict[str, str]:
    """The settings as Spark takes them (text), or ValueError naming the first wrong one."""
    if len(conf) > MAX_SETTINGS:
        raise ValueError(f"{len(conf)} settings: at most {MAX_SETTINGS}")
    out: dict[str, str] = {}
    for key, raw in conf.items():
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            shown = str(key)[:80]
            raise ValueError(f"'{shown}' is not a Spark setting: keys begin with 'spark.' (spark.driver.memory)")
        if key in OWNED:
            raise ValueError(f"{key} cannot be set here: {OWNED[key]}")
        if isinstance(raw, bool):
            value = "true" if raw else "false"
        elif isinstance(raw, int | str):
            value = str(raw)
        else:
            raise ValueError(f"{key}: write text, a whole number or true/false")  # noqa: TRY004 - pydantic wants it
        if not _VALUE_RE.fullmatch(value):
            raise ValueError(f"{key}: the value must be 1 to 1000 printable ASCII characters")
        if key in SIZES:
            _check_size(key, value, local=local, ram=ram)
        if key in COUNTS:
            low, high = COUNTS[key]
            if not value.isdigit() or not low <= int(value) <= high:
                raise ValueError(f"{key} = {value!r}: write a whole number from {low:,} to {high:,}")
        out[key] = value
    return out


def _check_size(key: str, value: str, *, local: bool, ram: int | None) -> None:
    try:
        n = size_bytes(value)
    except ValueError as e:
        raise ValueError(f"{key} = {e}") from None
    low, high = SIZES[key]
    if not low <= n <= high:
        raise ValueError(f"{key} = {value!r} is out of bounds: from {low // 1024**2}m to {high // 1024**4}t")
    if local and key == "spark.driver.memory" and ram is not None and n > ram:
        raise ValueError(
            f"{key} = {value!r} is more than this machine's memory ({ram / 1024**3:.1f} GiB), where a local "
            "master runs the whole job; Spark spills to disk past its memory, so less is enough"
        )
