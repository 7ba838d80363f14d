"""The `[engine]` choice: DuckDB by default, Spark on request, with a master and an app name Spark can take."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector import config
from connector.errors import ConfigError


def _load(tmp_path: Path, text: str) -> config.EngineSection:
    path = tmp_path / "tl.toml"
    path.write_text(f"[engine]\n{text}\n", encoding="utf-8")
    return config.load(path).engine


def test_the_embedded_engine_is_the_default(tmp_path: Path) -> None:
    engine = _load(tmp_path, "")
    assert (engine.kind, engine.master, engine.app_name) == ("duckdb", "local[2]", "trust-ladder")


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[1]",
        "local[2]",
        "local[*]",
        "spark://10.0.0.5:7077",
        "yarn",
        "k8s://https://kube.example.com:443",
    ],
)
def test_spark_masters_spark_understands(tmp_path: Path, master: str) -> None:
    engine = _load(tmp_path, f'kind = "spark"\nmaster = "{master}"')
    assert (engine.kind, engine.master) == ("spark", master)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kind = "postgres"', "[engine.kind] Input should be 'duckdb' or 'spark'"),
        ('master = "local[0]"', "[engine.master] String should match pattern"),
        ('master = "local[2] --conf x"', "[engine.master] String should match pattern"),
        ('master = "spark://host:7077\\n"', "[engine.master] String should match pattern"),
        ('master = "http://host"', "[engine.master] String should match pattern"),
        ('app_name = ""', "[engine.app_name] String should match pattern"),
        ('app_name = "x\\"; rm"', "[engine.app_name] String should match pattern"),
        ('app_name = "' + "a" * 101 + '"', "[engine.app_name] String should have at most 100 characters"),
    ],
)
def test_engine_choices_that_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert message in str(caught.value)


def test_spark_settings_for_a_million_contacts_are_passed_as_spark_takes_them(tmp_path: Path) -> None:
    engine = _load(
        tmp_path,
        'kind = "spark"\nspark_conf = { "spark.driver.memory" = "2g", "spark.sql.shuffle.partitions" = 16, '
        '"spark.sql.adaptive.enabled" = true }',
    )
    assert engine.spark_conf == {
        "spark.driver.memory": "2g",
        "spark.sql.shuffle.partitions": "16",
        "spark.sql.adaptive.enabled": "true",
    }


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ('{ "driver.memory" = "8g" }', "keys begin with 'spark.' (spark.driver.memory)"),
        ('{ "spark.sql.ansi.enabled" = false }', "the engine runs with ANSI mode on"),
        ('{ "spark.sql.session.timeZone" = "Europe/Paris" }', "the engine runs in UTC"),
        ('{ "spark.sql.variable.substitute" = true }', "rule text would be read as a variable"),
        ('{ "spark.master" = "yarn" }', "set [engine] master instead"),
        ('{ "spark.driver.memory" = "lots" }', "spark.driver.memory = 'lots' is not a Spark size"),
        ('{ "spark.driver.memory" = "100m" }', "out of bounds: from 512m"),
        ('{ "spark.executor.memory" = "2048t" }', "out of bounds"),
        ('{ "spark.driver.memory" = "1000g" }', "more than this machine's memory"),
        ('{ "spark.sql.shuffle.partitions" = 0 }', "a whole number from 1 to 100,000"),
        ('{ "spark.sql.shuffle.partitions" = "many" }', "a whole number from 1 to 100,000"),
        ('{ "spark.app.name" = "x" }', "set [engine] app_name instead"),
        ('{ "spark.local.dir" = "/tmp\\n/x" }', "printable ASCII"),
        ('{ "spark.x" = 1.5 }', "spark_conf"),
    ],
)
def test_spark_settings_that_are_refused(tmp_path: Path, conf: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f'kind = "spark"\nspark_conf = {conf}')
    assert message in str(caught.value)


def test_a_cluster_driver_may_have_more_memory_than_this_machine(tmp_path: Path) -> None:
    engine = _load(tmp_path, 'kind = "spark"\nmaster = "yarn"\nspark_conf = { "spark.driver.memory" = "1000g" }')
    assert engine.spark_conf["spark.driver.memory"] == "1000g"


@pytest.mark.parametrize(
    ("master", "says"),
    [
        ("spark://no-such-host.invalid:7077", "check that [engine] master = 'spark://no-such-host.invalid:7077' is"),
        ("local[2]", "it needs Java 17"),
    ],
)
def test_a_spark_that_cannot_start_names_the_cause_and_what_to_check(
    monkeypatch: pytest.MonkeyPatch, master: str, says: str
) -> None:
    """Spark's own error says only that the context stopped; the cause is a `Caused by:` line deep in it."""
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="the spark extra is not installed")
    from connector.engine import spark  # noqa: PLC0415
    from connector.errors import EngineUnavailable  # noqa: PLC0415

    def unreachable(_: object) -> None:
        raise RuntimeError(
            "An error occurred while calling None.org.apache.spark.api.java.JavaSparkContext.\n"
            ": java.lang.IllegalStateException: Cannot call methods on a stopped SparkContext.\n"
            "\tat org.apache.spark.SparkContext.assertNotStopped(SparkContext.scala:120)\n"
            "Caused by: org.apache.spark.SparkException: Exception thrown in awaitResult\n"
            "Caused by: java.net.UnknownHostException: no-such-host.invalid\n"
        )

    monkeypatch.setattr(pyspark_sql.SparkSession.Builder, "getOrCreate", unreachable)
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    with pytest.raises(EngineUnavailable) as caught:
        spark.session(config.EngineSection(kind="spark", master=master))
    assert "java.net.UnknownHostException: no-such-host.invalid" in str(caught.value)
    assert says in str(caught.value)


_THREADS = """
import os, sys
from pathlib import Path
from connector.config import EngineSection
from connector.engine import session
import duckdb
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
con = duckdb.connect()
session.tune(con, EngineSection(), Path)
print(con.execute("SELECT current_setting('threads')").fetchone()[0])
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="the system has no CPU affinity to set")
def test_the_engine_takes_a_thread_per_core_this_process_may_use() -> None:
    """DuckDB starts a thread per core of the machine; a process held to one core (taskset, a cpuset) gets one."""
    done = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "1"
