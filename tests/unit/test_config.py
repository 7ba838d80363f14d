"""The config file: typos are errors that name the file and key; relative paths follow the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from connector import config
from connector.config import SalesforceSection
from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_example_config_is_valid_and_equals_the_defaults() -> None:
    cfg = config.load(ROOT / "config.example.toml")
    assert cfg.model_dump(exclude={"source"}) == config.Config().model_dump(exclude={"source"})


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "tl.toml"
    path.parent.mkdir()
    path.write_text('[local]\ndatabase = "data/crm.duckdb"\n')
    cfg = config.load(path)
    assert cfg.resolve(cfg.local.database) == path.parent.resolve() / "data" / "crm.duckdb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[engine]\nmemory_limt = '1GB'\n", "[engine.memory_limt] unknown key"),
        ("[engine]\nmemory_limit = 'lots'\n", "[engine.memory_limit] String should match pattern"),
        ("[crm]\nbackend = 'oracle'\n", "[crm.backend] Input should be 'local'"),
        ("[local\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tl.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_a_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")


def test_the_commented_salesforce_example_is_a_valid_section_with_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    keys = [m.group(1) for m in re.finditer(r"^# (\w+ = .*)$", text[text.index("# [salesforce]") :], re.MULTILINE)]
    section = tomllib.loads("\n".join(keys))
    assert set(section) == set(SalesforceSection.model_fields)
    SalesforceSection(**section)
