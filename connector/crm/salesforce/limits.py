"""API usage, read from `Sforce-Limit-Info` on every response, and the per-run budget guard.

The guard is asked between batches (a query page, a write of 200 records, a Bulk job step), so a run stops
cleanly, keeping what it did, instead of failing halfway through a write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from connector import log
from connector.errors import BudgetExhausted

# The org-wide counter only: `per-app-api-usage=17/250(appName=x)` may stand beside it in the same header.
_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
_log = log.get("trust_ladder.salesforce")


@dataclass
class ApiUsage:
    fraction: float  # share of the org's daily allowance this run may spend
    used: int | None = None  # the org's count at the last response
    limit: int | None = None  # the org's daily allowance
    at_start: int | None = None  # the org's count at this run's first response

    def observe(self, resp: requests.Response) -> None:
        header = resp.headers.get("Sforce-Limit-Info")
        if not header:
            return
        m = _USAGE.search(header)
        if not m:
            return
        self.used, self.limit = int(m.group(1)), int(m.group(2))
        if self.at_start is None:
            self.at_start = self.used - 1  # this response's own call belongs to the run

    @property
    def spent(self) -> int:
        if self.used is None or self.at_start is None:
            return 0
        return self.used - self.at_start

    @property
    def budget(self) -> int | None:
        return None if self.limit is None else max(1, int(self.limit * self.fraction))

    def check(self, before: str) -> None:
        """Raise BudgetExhausted when this run's share, or the org's whole allowance, is spent."""
        budget = self.budget
        if budget is None or self.used is None or self.limit is None:
            return
        if self.spent >= budget or self.used >= self.limit:
            _log.warning(
                "salesforce.budget_reached",
                spent=self.spent,
                budget=budget,
                org_used=self.used,
                org_limit=self.limit,
                stopped_before=before,
            )
            raise BudgetExhausted(
                f"API budget reached before {before}: this run spent {self.spent:,} calls of its "
                f"{budget:,} ({self.fraction:.0%} of the org's daily {self.limit:,}; the org has used "
                f"{self.used:,}). What was done is kept; the next run continues from there. "
                "Raise [salesforce] budget_fraction to allow more per run."
            )
