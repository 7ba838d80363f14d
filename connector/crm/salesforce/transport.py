"""The HTTP session every Salesforce call goes through (REST, Collections, Bulk 2.0, sign-in, Metadata).

simple-salesforce hands its `session` to everything it builds, so this one class is where the run gets:
a connect and a read timeout on every call, both capped by the time the run has left (`deadline`), the retry
policy (`retry.policy`) on idempotent requests within the call's own time limit, `Sforce-Limit-Info` read on
every response, the call count, the daily-limit stop, and one renewal of an expired session (401
INVALID_SESSION_ID) followed by one repeat of the call, for Bulk 2.0 too, which never renews by itself.

It also keeps what later steps need from the wire: the org's clock (each response's `Date` header, for the
watermarks), the last response (for errors that name the endpoint and status), and every secret a sign-in
answer carries (access, refresh and id tokens, SOAP session ids), registered with `log.add_secret` at once so
that no message or log line can show them, even when a server echoes one back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import Retrying

from connector import log
from connector.crm.salesforce import retry
from connector.crm.salesforce.limits import ApiUsage
from connector.deadline import Deadline
from connector.errors import BudgetExhausted, CrmError

_log = log.get("trust_ladder.salesforce")

_SIGN_IN_PATHS = ("/services/Soap/u/", "/services/oauth2/token")
_KEPT_ERROR_CHARS = 5000
_TOKEN_KEYS = ("access_token", "refresh_token", "id_token")
_SOAP_SESSION = re.compile(r"<(?:\w+:)?sessionId>([^<]+)</(?:\w+:)?sessionId>")
_SOAP_USER = re.compile(r"<(?:\w+:)?userId>(005\w{12,15})</(?:\w+:)?userId>")
_IDENTITY_USER = re.compile(r"/id/\w+/(005\w{12,15})$")

Renew = Callable[[], tuple[str, str]]  # signs in again; returns (access token, instance host)


class SessionExpired(CrmError):
    """The access token expired and could not be renewed (or expired again at once)."""


class SalesforceSession(requests.Session):
    def __init__(
        self,
        *,
        usage: ApiUsage,
        retrying: Retrying,
        timeout: float,
        connect_timeout: float = 10.0,
        call_seconds: float | None = None,
        deadline: Deadline | None = None,
    ) -> None:
        super().__init__()
        self.usage = usage
        self.retrying = retrying
        self.timeout = timeout  # read timeout
        self.connect_timeout = connect_timeout
        self.call_seconds = call_seconds  # one call and its retries
        self.deadline = deadline or Deadline(None)
        self.calls = 0  # API calls sent, retries included; sign-in requests are not API calls
        self.renew: Renew | None = None  # None: nothing to renew with (an existing access token)
        self.renew_hint = "get a fresh access token and run again"
        self.org_time: dt.datetime | None = None  # the org's clock at the last response that gave it (`Date`)
        self.last: tuple[str, str, int] | None = None  # (method, URL without query, status) of the last answer
        self.last_error = ""  # the body of the last answer that was an error (>= 300), for messages
        self.user_id: str | None = None  # the signed-in user's Id (the sign-in answer), for "our own writes"
        self._renewing = False
        self._grace: Deadline | None = None

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        verb = method.decode() if isinstance(method, bytes) else method
        target = url.decode() if isinstance(url, bytes) else url
        kwargs.pop("timeout", None)  # ours: connect and read, capped by the time left (see `_timeout`)
        resp = self._send(verb.upper(), target, args, kwargs)
        if resp.status_code == 401 and not self._renewing and _expired(resp):
            resp = self._renew_and_repeat(verb.upper(), target, args, kwargs)
        if retry.is_daily_limit(resp):
            _log.error("salesforce.daily_limit", org_used=self.usage.used, org_limit=self.usage.limit)
            raise BudgetExhausted(
                "Salesforce refused the call: the org's daily API request limit is used up "
                "(REQUEST_LIMIT_EXCEEDED: TotalRequests). What was done is kept; run again after the "
                "rolling 24-hour window frees calls."
            )
        return resp

    @contextlib.contextmanager
    def grace(self, seconds: float) -> Iterator[None]:
        """Calls inside may run a little past the run's deadline: cleaning up (aborting a Bulk job) on the way out."""
        self._grace = Deadline(seconds, clock=self.deadline.clock, what="cleaning up")
        try:
            yield
        finally:
            self._grace = None

    def _timeout(self, limit: Deadline, what: str) -> tuple[float, float]:
        left = limit.left()
        if left < retry.MIN_ATTEMPT_SECONDS:
            if limit.binding() is limit.root():
                raise limit.root().reached(what)
            raise requests.Timeout(f"no time left for {what} within its {limit.seconds:.0f} s")
        return min(self.connect_timeout, left), min(self.timeout, left)

    def _send(self, method: str, url: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> requests.Response:
        what = f"{method} {_path(url)}"
        limit = self._grace or self.deadline.within(self.call_seconds, what)

        def once(*, limit: Deadline, what: str) -> requests.Response:
            timeout = self._timeout(limit, what)
            if not any(p in url for p in _SIGN_IN_PATHS):
                self.calls += 1
            resp = super(SalesforceSession, self).request(method, url, *args, **{**kwargs, "timeout": timeout})
            self._observe(method, url, resp)
            return resp

        if not retry.retried(method, url):
            return once(limit=limit, what=what)
        result: requests.Response = self.retrying(once, limit=limit, what=what)
        return result

    def _observe(self, method: str, url: str, resp: requests.Response) -> None:
        self.usage.observe(resp)
        self.last = (method, url.split("?", 1)[0], resp.status_code)
        self.last_error = resp.text[:_KEPT_ERROR_CHARS] if resp.status_code >= 300 else ""
        stamp = resp.headers.get("Date")
        if stamp:
            with contextlib.suppress(TypeError, ValueError):
                self.org_time = parsedate_to_datetime(stamp).astimezone(dt.UTC)
        if any(p in url for p in _SIGN_IN_PATHS) and resp.status_code < 300:
            _remember_secrets(resp)
            self.user_id = _signed_in_user(resp) or self.user_id

    def _renew_and_repeat(
        self, method: str, url: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> requests.Response:
        if self.renew is None:
            raise SessionExpired(
                f"the Salesforce session expired or is invalid (INVALID_SESSION_ID); {self.renew_hint}"
            )
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
            raise SessionExpired(
                "the Salesforce session expired again right after it was renewed; "
                "check the integration user's session settings"
            )
        _log.info("salesforce.session_renewed")
        return resp


def _expired(resp: requests.Response) -> bool:
    return any(code == "INVALID_SESSION_ID" for code, _ in retry.error_codes(resp))


def _path(url: str) -> str:
    """The part of a URL worth naming in a message: below /services/data/vXX.X/ when there, never the query."""
    path = urlsplit(url).path
    marker = path.find("/services/data/v")
    if marker >= 0:
        rest = path[marker + len("/services/data/v") :]
        return rest.split("/", 1)[1] if "/" in rest else rest
    return path


def _signed_in_user(resp: requests.Response) -> str | None:
    """The user a sign-in answer is for: SOAP `loginResponse` `<userId>` ("login()", SOAP API Developer Guide), or
    the last part of an OAuth token answer's identity URL `id` (".../id/<org Id>/<user Id>", "OAuth Tokens and
    Scopes")."""
    text = resp.text
    found = _SOAP_USER.search(text)
    if found:
        return found.group(1)
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            body = resp.json()
            identity = body.get("id") if isinstance(body, dict) else None
            if isinstance(identity, str):
                match = _IDENTITY_USER.search(identity)
                return match.group(1) if match else None
    return None


def _remember_secrets(resp: requests.Response) -> None:
    """The tokens and session ids of a sign-in answer, registered before anything else reads them."""
    text = resp.text
    for session_id in _SOAP_SESSION.findall(text):
        log.add_secret(session_id)
    if text.lstrip().startswith("{"):
        with contextlib.suppress(ValueError):
            body = resp.json()
            if isinstance(body, dict):
                for key in _TOKEN_KEYS:
                    value = body.get(key)
                    if isinstance(value, str):
                        log.add_secret(value)
