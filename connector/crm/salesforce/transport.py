"""The HTTP session every Salesforce call goes through (REST, Collections, Bulk 2.0, sign-in, Metadata).

simple-salesforce hands its `session` to everything it builds, so this one class is where the run gets:
a timeout on every call, the retry policy (`retry.policy`) on idempotent requests, `Sforce-Limit-Info` read on
every response, the call count, the daily-limit stop, and one renewal of an expired session (401
INVALID_SESSION_ID) followed by one repeat of the call, for Bulk 2.0 too, which never renews by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import Retrying

from connector import log
from connector.crm.salesforce import retry
from connector.crm.salesforce.limits import ApiUsage
from connector.errors import BudgetExhausted, CrmError

_log = log.get("trust_ladder.salesforce")

_SIGN_IN_PATHS = ("/services/Soap/u/", "/services/oauth2/token")

Renew = Callable[[], tuple[str, str]]  # signs in again; returns (access token, instance host)


class SessionExpired(CrmError):
    """The access token expired and could not be renewed (or expired again at once)."""


class SalesforceSession(requests.Session):
    def __init__(self, *, usage: ApiUsage, retrying: Retrying, timeout: float) -> None:
        super().__init__()
        self.usage = usage
        self.retrying = retrying
        self.timeout = timeout
        self.calls = 0  # API calls sent, retries included; sign-in requests are not API calls
        self.renew: Renew | None = None  # None: nothing to renew with (an existing access token)
        self.renew_hint = "get a fresh access token and run again"
        self._renewing = False

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        verb = method.decode() if isinstance(method, bytes) else method
        target = url.decode() if isinstance(url, bytes) else url
        kwargs.setdefault("timeout", self.timeout)
        resp = self._send(verb.upper(), target, args, kwargs)
        if resp.status_code == 401 and not self._renewing and _expired(resp):
            resp = self._renew_and_repeat(verb.upper(), target, args, kwargs)
        if retry.is_daily_limit(resp):
            _log.error("salesforce.daily_limit", org_used=self.usage.used, org_limit=self.usage.limit)
            raise BudgetExhausted(
                "Salesforce refused the call: the org's daily API request limit is used up "
                "(REQUEST_LIMIT_EXCEEDED: TotalRequests). What was done is kept; run again after the "
                "rolling 24-hour window frees calls.")
        return resp

    def _send(self, method: str, url: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> requests.Response:
        def once() -> requests.Response:
            if not any(p in url for p in _SIGN_IN_PATHS):
                self.calls += 1
            resp = super(SalesforceSession, self).request(method, url, *args, **kwargs)
            self.usage.observe(resp)
            return resp

        if method not in retry.RETRIED_METHODS:
            return once()
        result: requests.Response = self.retrying(once)
        return result

    def _renew_and_repeat(self, method: str, url: str, args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> requests.Response:
        if self.renew is None:
            raise SessionExpired(f"the Salesforce session expired or is invalid (INVALID_SESSION_ID); "
                                 f"{self.renew_hint}")
        _log.info("salesforce.session_renewing")
        self._renewing = True
        try:
            token, instance = self.renew()
        finally:
            self._renewing = False
        headers = dict(kwargs.get("headers") or {})
        for key in list(headers):
            if key.lower() == "authorization":
                headers[key] = f"Bearer {token}"
        kwargs["headers"] = headers
        old = urlsplit(url)
        if old.netloc and old.netloc != instance:
            url = url.replace(old.netloc, instance, 1)
        resp = self._send(method, url, args, kwargs)
        if resp.status_code == 401 and _expired(resp):
            raise SessionExpired("the Salesforce session expired again right after it was renewed; "
                                 "check the integration user's session settings")
        _log.info("salesforce.session_renewed")
        return resp


def _expired(resp: requests.Response) -> bool:
    return any(code == "INVALID_SESSION_ID" for code, _ in retry.error_codes(resp))
