"""The `[engine]` choice: DuckDB by default, Spark on request, with a master and an app name Spark can take."""

from __future__ import annotations

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
