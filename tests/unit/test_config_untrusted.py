"""The config is untrusted input too (issue 9): anything unreadable is a ConfigError (exit 3) naming the file; the
engine gets no more threads than there are cores and a sane memory limit; and `[fields]` can only name custom
fields of our own, never a standard field holding customer data."""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connector import config
from connector.config import EngineSection, FieldsSection
from connector.errors import ConfigError
from connector.exit_codes import ExitCode

GB = 1000**3


REAL_CORES, REAL_MEMORY = config.available_cores, config.physical_memory


@pytest.fixture(autouse=True, scope="module")
def _a_two_core_four_gigabyte_machine() -> Iterator[None]:
    """Whatever machine runs the tests, the limits are checked against a known one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "available_cores", lambda: 2)
        patch.setattr(config, "physical_memory", lambda: 4 * GB)
        yield


def _refused(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert info.value.exit_code == ExitCode.CONFIG
    return str(info.value)


def _refused_bytes(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "tl.toml"
    path.write_bytes(data)
    return _refused(path)


# -- unreadable ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            "[log]\nlevel = 'd\xe9bug'\n".encode("latin-1"),
            "tl.toml:2:11: not UTF-8 text: the byte 0xE9 here cannot be read",
            id="latin-1",
        ),
        pytest.param(b"[log]\nlevel = 'info'\x00\n", "not valid TOML", id="nul"),
        pytest.param(b"[log\n", "not valid TOML", id="syntax"),
        pytest.param(b"[salesforce]\npage_size = " + b"9" * 5000 + b"\n", "not valid TOML", id="5000-digits"),
        pytest.param(b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", "not valid TOML", id="deep-arrays"),
        pytest.param(
            b"[salesforce]\ntimeout_seconds = inf\n", "[salesforce.timeout_seconds] Input should be a finite", id="inf"
        ),
        pytest.param(
            b"a = '" + b"x" * config.MAX_CONFIG_BYTES + b"'\n", "the config file is larger than 1 MiB", id="too-large"
        ),
    ],
)
def test_an_unreadable_config_is_a_config_error(tmp_path: Path, data: bytes, message: str) -> None:
    text = _refused_bytes(tmp_path, data)
    assert str(tmp_path / "tl.toml") in text
    assert message in text


def test_a_folder(tmp_path: Path) -> None:
    assert _refused(tmp_path) == f"{tmp_path}: this is a folder, not a config file: name the file itself"


def test_a_missing_file_named_explicitly(tmp_path: Path) -> None:
    assert _refused(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: config file not found: check the path"


def test_a_missing_file_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.ENV_CONFIG, str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="config file not found"):
        config.load()


def test_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "tl.toml").symlink_to(tmp_path / "tl.toml")
    assert "a symbolic link that leads back to itself" in _refused(tmp_path / "tl.toml")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_dev_zero() -> None:
    assert "not a regular file" in _refused(Path("/dev/zero"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "tl.toml")
    assert "not a regular file" in _refused(tmp_path / "tl.toml")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may run as root, who reads anything: the refusal is simulated where the file is opened."""
    path = tmp_path / "tl.toml"
    path.write_text("[log]\n")

    def refuse(*_args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    assert _refused(path) == f"{path}: cannot read the config file: permission denied"


# -- engine ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("threads = 100000", "[engine.threads] 100000 threads is more than the 2 cores this process may use"),
        ("threads = 3", "[engine.threads] 3 threads is more than the 2 cores"),
        ("threads = 0", "[engine.threads] Input should be greater than or equal to 1"),
        ("threads = true", "[engine.threads] Input should be a valid integer"),
        ("memory_limit = '0MB'", "[engine.memory_limit] 0MB is too little for the engine: give it at least 64MB"),
        ("memory_limit = '63MB'", "too little for the engine"),
        ("memory_limit = '5GB'", "[engine.memory_limit] 5GB is more than this machine's memory (4.0 GB)"),
        ("memory_limit = '4GiB'", "4GiB is more than this machine's memory"),
        ("memory_limit = '1e3MB'", "String should match pattern"),
        ("memory_limit = '\u0661\u0665\u0663\u0666MB'", "String should match pattern"),  # Arabic-Indic digits
        ("memory_limit = '1536\u3000MB'", "String should match pattern"),  # an ideographic space
        ("memory_limit = '1536MB\\n'", "String should match pattern"),
        ("memory_limit = '" + "9" * 400 + "GB'", "String should have at most 24 characters"),
    ],
)
def test_engine_limits(tmp_path: Path, text: str, message: str) -> None:
    assert message in _refused_bytes(tmp_path, f"[engine]\n{text}\n".encode())


@pytest.mark.parametrize(
    "text", ["threads = 2", "threads = 1", "memory_limit = '64MB'", "memory_limit = '4GB'", "memory_limit = '1.5 GiB'"]
)
def test_engine_values_within_the_limits(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tl.toml"
    path.write_text(f"[engine]\n{text}\n")
    config.load(path)


def test_the_real_machine_is_asked_for_its_cores_and_memory() -> None:
    """The helpers the limits use answer on this machine (the fixture above stands in for them elsewhere)."""
    assert 1 <= REAL_CORES() <= (os.cpu_count() or 1)
    assert (REAL_MEMORY() or 1) >= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(-5, 10**6) | st.none())
def test_threads_are_accepted_exactly_up_to_the_cores(threads: int | None) -> None:
    ok = threads is None or 1 <= threads <= 2
    try:
        EngineSection(threads=threads)
    except ValidationError:
        assert not ok
    else:
        assert ok


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10**7),
    st.sampled_from(["", ".5", ".25"]),
    st.sampled_from(["", " "]),
    st.sampled_from(list(config._UNITS)),
)
def test_memory_limits_are_accepted_exactly_between_64mb_and_the_machines_memory(
    whole: int, fraction: str, space: str, unit: str
) -> None:
    text = f"{whole}{fraction}{space}{unit}"
    size = (whole + float(fraction or 0)) * config._UNITS[unit]
    ok = config.MIN_MEMORY <= size <= 4 * GB and len(text) <= 24
    try:
        EngineSection(memory_limit=text)
    except ValidationError:
        assert not ok
    else:
        assert ok


# -- fields ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("next_step", "FirstName"),
        ("stage", "OwnerId"),
        ("rules_version", "Email"),
        ("stage_since", "CreatedDate"),
        ("reason", "Id"),
        ("flags", "IsDeleted"),
    ],
)
def test_a_standard_field_is_never_ours_to_write(tmp_path: Path, key: str, name: str) -> None:
    """The issue's cases: each of these used to overwrite customer data (exit 0) or crash (exit 70)."""
    text = _refused_bytes(tmp_path, f'[fields]\n{key} = "{name}"\n'.encode())
    assert f"[fields.{key}] '{name}' is not a custom field: trust-ladder writes only fields of its own" in text
    assert "ending in __c" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'stage = "Trust_Flags__c"',
            "[fields] stage and flags both name Trust_Flags__c: each value needs a field of its own",
        ),
        ('reason = "trust_next_step__C"', "is not a custom field"),
        ('reason = "trust_next_step__c"', "next_step and reason both name trust_next_step__c"),
        ('stage = "Trust__Stage__c"', "'Trust__Stage__c' is not a valid field API name"),
        ('stage = "Trust_Stage___c"', "is not a valid field API name"),
        ('stage = "1Trust_Stage__c"', "is not a valid field API name"),
        ('stage = "Trust Stage__c"', "is not a valid field API name"),
        ('stage = "__c"', "is not a valid field API name"),
        ('stage = "Trüst_Stage__c"', "is not a valid field API name"),
        (f'stage = "{"S" * 41}__c"', "is too long: a custom field's name has at most 40 characters before __c"),
    ],
)
def test_field_names_are_distinct_valid_custom_fields(tmp_path: Path, text: str, message: str) -> None:
    assert message in _refused_bytes(tmp_path, f"[fields]\n{text}\n".encode())


def test_a_forty_character_custom_field_is_fine() -> None:
    assert FieldsSection(stage="S" * 40 + "__c").stage == "S" * 40 + "__c"


def _is_custom_field_name(name: str) -> bool:
    """The rule in words, written without a regular expression to check the one in config.py."""
    if not name.endswith("__c"):
        return False
    base = name[:-3]
    allowed = set(string.ascii_letters + string.digits + "_")
    return (
        0 < len(base) <= 40
        and base[0] in string.ascii_letters
        and set(base) <= allowed
        and "__" not in base
        and not base.endswith("_")
    )


_NAME_CHARS = st.sampled_from([*"abcXYZ019_", "__c", "é", " ", "\n", "-"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_NAME_CHARS, max_size=50).map("".join) | st.text(max_size=50))
def test_a_field_name_is_accepted_exactly_when_it_is_a_custom_field(name: str) -> None:
    try:
        FieldsSection(stage=name)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == _is_custom_field_name(name)
