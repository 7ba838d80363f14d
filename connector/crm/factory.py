"""Which backend a config asks for, and the read-only view of its data that `simulate`, `report` and `explain` use."""

from __future__ import annotations

import duckdb

from connector.config import Config
from connector.crm import CrmBackend
from connector.crm.local.store import LocalCrm
from connector.errors import ConfigError, CrmError


def open_backend(cfg: Config) -> CrmBackend:
    if cfg.crm.backend == "local":
        return LocalCrm.open(cfg.resolve(cfg.local.database))
    if cfg.crm.backend == "salesforce":
        from connector.crm.salesforce.backend import SalesforceCrm  # noqa: PLC0415 - only Salesforce runs need it

        return SalesforceCrm.from_config(cfg)
    raise AssertionError(f"unknown backend {cfg.crm.backend}")  # the config model allows no other value


def open_data(cfg: Config) -> LocalCrm:
    """The CRM data as it is, for commands that only read it: the local CRM, or the Salesforce backend's mirror
    (what the last sync pulled) opened read-only, with no sign-in and no API call. Call `prepare` on it to get
    `crm_contact` / `crm_activity`."""
    if cfg.crm.backend == "local":
        return LocalCrm.open(cfg.resolve(cfg.local.database))
    if cfg.salesforce is None:
        raise ConfigError('a [salesforce] section is required when [crm] backend = "salesforce"')
    path = cfg.resolve(cfg.salesforce.mirror)
    if not path.exists():
        raise ConfigError(
            f"{path}: no Salesforce mirror here yet; it is filled by a sync. Run `trust-ladder sync "
            "--dry-run` (reads the org, writes nothing to it) and try again."
        )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise CrmError(
                f"{path}: the Salesforce mirror is in use by another process (a sync running?); try "
                f"again when it has finished ({exc})"
            ) from None
        raise CrmError(f"{path}: cannot open the Salesforce mirror: {exc}") from None
    return LocalCrm(con, path)
