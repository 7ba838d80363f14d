"""`demo --warehouse DIR`: the demo org as a warehouse copy, and a config that syncs from it on Spark, to try the Spark
engine and the warehouse source on one machine, without Salesforce or a lakehouse.

The copy is the local CRM written out in Fivetran's naming (connector.crm.warehouse.export), next to a config,
`DIR/trust-ladder.toml`, that reads it with `[engine] kind = "spark"` and writes back into the same local CRM, with
the same state store, rule file and fields: `trust-ladder --config DIR/trust-ladder.toml sync`.
"""

from __future__ import annotations

import json
from pathlib import Path

from connector import files
from connector.commands.rulefile import rules_path
from connector.config import Config
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse import naming
from connector.crm.warehouse.export import OBJECTS, export
from connector.errors import ConfigError

CONFIG_NAME = "trust-ladder.toml"


def check(folder: Path) -> None:
    """Refuse, before the demo replaces anything, a folder the copy cannot go to: one that is a file, one that cannot
    be written, and one that already holds a config or a copy (`--warehouse .` would overwrite the user's own
    trust-ladder.toml; a copy written into another would mix two orgs' files)."""
    where = folder.expanduser().absolute()
    taken = [where / CONFIG_NAME] + [where / naming.table_name(obj, "fivetran") for obj in OBJECTS]
    held = [p.name for p in taken if where.is_dir() and p.exists() and (p.is_file() or any(p.iterdir()))]
    if held:
        raise ConfigError(
            f"--warehouse {folder}: {where} already holds {', '.join(held)}; give a new or empty folder (or remove "
            "them), so that no config or copy is overwritten"
        )
    problem = files.unwritable_folder(where)
    if problem is not None:
        raise ConfigError(f"--warehouse {folder}: {problem}; give a new or empty folder")


def write(cfg: Config, folder: Path) -> Path:
    """Export the local CRM into `folder` and write the config that syncs from it on Spark; returns its path."""
    folder = folder.resolve()
    crm = LocalCrm.open(cfg.resolve(cfg.local.database))
    try:
        copy = export(crm, folder, naming_="fivetran")
    finally:
        crm.close()
    sections: dict[str, dict[str, object]] = {
        "local": {"database": str(cfg.resolve(cfg.local.database).resolve())},
        "state": {"path": str(cfg.resolve(cfg.state.path).resolve())},
        "rules": {"path": str(rules_path(cfg).resolve()), "mode": cfg.rules.mode},
        "fields": cfg.fields.model_dump(),
        "activities": cfg.activities.model_dump(),
        "engine": {"kind": "spark", "master": cfg.engine.master, "app_name": cfg.engine.app_name},
        "warehouse": copy.model_dump(exclude_none=True, exclude={"columns"}),
    }
    config = folder / CONFIG_NAME
    config.write_text(
        "# Written by `trust-ladder demo --warehouse`: Spark reads the demo org's Fivetran-named copy beside\n"
        "# this file and writes back into the local CRM.\n"
        + "".join(_section(name, keys) for name, keys in sections.items()),
        encoding="utf-8",
    )
    return config


def _section(name: str, keys: dict[str, object]) -> str:
    # JSON's strings, booleans and arrays of strings are TOML's too.
    return f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items()) + "\n"
