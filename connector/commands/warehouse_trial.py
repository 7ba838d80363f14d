"""`demo --warehouse DIR`: the demo org as a warehouse copy, and a config that syncs from it on Spark, to try the Spark
engine and the warehouse source on one machine, without Salesforce or a lakehouse.

The copy is the local CRM written out in Fivetran's naming (connector.crm.warehouse.export), next to a config,
`DIR/trust-ladder.toml`, that reads it with `[engine] kind = "spark"` and writes back into the same local CRM, with
the same state store, rule file and fields: `trust-ladder --config DIR/trust-ladder.toml sync`.
"""

from __future__ import annotations

import json
from pathlib import Path

from connector.commands.rulefile import rules_path
from connector.config import Config
from connector.crm.local.store import LocalCrm
from connector.crm.warehouse.export import export

CONFIG_NAME = "trust-ladder.toml"


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
