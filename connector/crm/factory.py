"""Which backend a config asks for."""

from __future__ import annotations

from connector.config import Config
from connector.crm import CrmBackend
from connector.crm.local.store import LocalCrm


def open_backend(cfg: Config) -> CrmBackend:
    if cfg.crm.backend == "local":
        return LocalCrm.open(cfg.resolve(cfg.local.database))
    if cfg.crm.backend == "salesforce":
        from connector.crm.salesforce.backend import SalesforceCrm  # noqa: PLC0415 - only Salesforce runs need it

        return SalesforceCrm.from_config(cfg)
    raise AssertionError(f"unknown backend {cfg.crm.backend}")  # the config model allows no other value
