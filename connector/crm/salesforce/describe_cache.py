"""Contact's describe for a run: the one the mirror remembers while it is less than a day old, else the org's.

A remembered describe never refuses a run on its own: whatever it finds wrong (a field missing, a picklist value
lacking, a field not writable) is checked again against a fresh describe first, once a run (`refresh`). `fields
check` always reads the org's; `fields deploy` forgets the remembered one (connector.crm.salesforce.remembered).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from connector import log
from connector.config import FieldsSection
from connector.crm import RuleNeeds
from connector.crm.local.store import LocalCrm
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce import remembered
from connector.crm.salesforce.auth import Connection
from connector.crm.salesforce.limits import ApiUsage
from connector.crm.salesforce.refusals import salesforce_errors
from connector.errors import ConfigError

_log = log.get("trust_ladder.salesforce")


class ContactDescribe:
    def __init__(self, conn: Connection, usage: ApiUsage, mirror: LocalCrm, now: Callable[[], dt.datetime]) -> None:
        self.conn = conn
        self.usage = usage
        self.mirror = mirror
        self.now = now
        self._body: dict[str, Any] | None = None
        self._remembered = False  # this run's describe came from the mirror, not the org

    def get(self, *, refresh: bool = False) -> dict[str, Any]:
        """The remembered describe while it is fresh, else the org's (then remembered). `refresh`: the org's,
        whatever is remembered, unless this run already read it from the org."""
        if self._body is not None and not (refresh and self._remembered):
            return self._body
        now = self.now()
        kept = None if refresh else remembered.contact_describe(self.mirror, now)
        if kept is not None:
            self._body, self._remembered = kept, True
            return kept
        self.usage.check("describing Contact")
        with salesforce_errors("describing Contact"):
            body = self.conn.sf.restful("sobjects/Contact/describe")
        self._body, self._remembered = (body if isinstance(body, dict) else {}), False
        remembered.keep_contact_describe(self.mirror, self._body, now)
        return self._body

    def refresh(self) -> bool:
        """Read the describe from the org again, unless this run already did; True when it did now."""
        if self._body is not None and not self._remembered:
            return False
        self.get(refresh=True)
        _log.info("salesforce.describe_refreshed", object="Contact", reason="the remembered describe may be stale")
        return True

    def forget(self) -> None:
        """After `fields deploy`: the next describe is the org's."""
        remembered.forget(self.mirror, remembered.CONTACT_DESCRIBE, remembered.CONTACT_DESCRIBED_AT)
        self._body = None

    def problems(self, fields: FieldsSection, rules: RuleNeeds | None) -> list[str]:
        """What the fields check finds, confirmed against a fresh describe when a remembered one finds anything."""
        found = sf_fields.check(self.get(), fields, rules)
        if found and self.refresh():
            found = sf_fields.check(self.get(), fields, rules)
        return found

    def require(self, fields: FieldsSection) -> None:
        """ConfigError unless the org's Contact has every trust field: sync can neither read nor write them."""
        lacking = sf_fields.missing(self.get(), fields)
        if lacking and self.refresh():
            lacking = sf_fields.missing(self.get(), fields)
        if lacking:
            raise ConfigError(
                f"the org's Contact has no field {', '.join(lacking)}; sync cannot read or write the trust fields. "
                "Run `trust-ladder fields check`, then `trust-ladder fields deploy`."
            )
