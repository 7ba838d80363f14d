"""The one retry policy, and the one place that decides what is worth another try within this run.

Transient: HTTP 429 and 5xx, SERVER_UNAVAILABLE, the concurrent-request variant of REQUEST_LIMIT_EXCEEDED,
UNABLE_TO_LOCK_ROW, and connection resets or timeouts. Never: 400-class validation errors, INVALID_FIELD, our
own bugs, the daily TotalRequests limit (that ends the run, see `limits`), and never a POST: a POST creates a
Bulk job (or signs in), and repeating it blindly could run the job twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt

from connector import log

_log = log.get("trust_ladder.salesforce")

RETRIED_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})  # idempotent for what we send
TRANSIENT_CODES = frozenset({"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"})
DAILY_LIMIT_MARK = "TotalRequests"


def error_codes(resp: requests.Response) -> list[tuple[str, str]]:
    """(errorCode, message) pairs of a REST error body, a JSON array; empty when the body is something else."""
    if resp.status_code < 300:
        return []
    try:
        body = resp.json()
    except ValueError:
        return []
    if not isinstance(body, list):
        return []
    return [(str(e.get("errorCode", "")), str(e.get("message", ""))) for e in body if isinstance(e, dict)]


def is_daily_limit(resp: requests.Response) -> bool:
    """403 REQUEST_LIMIT_EXCEEDED for the org's daily allowance: not worth a retry today."""
    if resp.status_code != 403:
        return False
    return any(code == "REQUEST_LIMIT_EXCEEDED" and not _concurrency(msg) for code, msg in error_codes(resp))


def _concurrency(message: str) -> bool:
    return "Concurrent" in message and DAILY_LIMIT_MARK not in message


def is_transient(resp: requests.Response) -> bool:
    """Worth another try within this run: throttling, server trouble, a locked row, the concurrency limit."""
    if resp.status_code == 429 or resp.status_code >= 500:
        return True
    codes = error_codes(resp)
    if any(code in TRANSIENT_CODES for code, _ in codes):
        return True
    return resp.status_code == 403 and any(
        code == "REQUEST_LIMIT_EXCEEDED" and _concurrency(msg) for code, msg in codes)


def retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date: fall back to our own back-off


class _Wait:
    """Exponential back-off with full jitter, or the server's Retry-After when it gives one; capped either way."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base, self.cap, self.rng = base, cap, rng

    def __call__(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            server = retry_after(outcome.result())
            if server is not None:
                return min(server, self.cap)
        ceiling = min(self.cap, self.base * 2 ** (state.attempt_number - 1))
        return self.rng.uniform(ceiling / 2, ceiling)


def _log_backoff(state: RetryCallState) -> None:
    outcome = state.outcome
    what: dict[str, Any] = {}
    if outcome is not None and outcome.failed:
        what["error"] = type(outcome.exception()).__name__
    elif outcome is not None:
        resp = outcome.result()
        what["status"] = resp.status_code
        what["codes"] = [c for c, _ in error_codes(resp)]
    wait = state.next_action.sleep if state.next_action else 0.0
    _log.warning("salesforce.backoff", attempt=state.attempt_number, wait_s=round(wait, 3), **what)


def policy(*, max_attempts: int, cap: float, sleep: Callable[[float], None], base: float = 1.0,
           rng: random.Random | None = None) -> Retrying:
    """Declared once; `transport.SalesforceSession` runs every idempotent request through it."""
    return Retrying(
        retry=retry_if_result(is_transient)
        | retry_if_exception_type((requests.ConnectionError, requests.Timeout)),
        wait=_Wait(base, cap, rng or random.Random()),  # noqa: S311 - jitter, not cryptography
        stop=stop_after_attempt(max_attempts),
        sleep=sleep,
        reraise=True,
        before_sleep=_log_backoff,
        # When the attempts run out on a transient *response*, hand it back: the caller raises its usual error.
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
