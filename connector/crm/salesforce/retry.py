"""The one retry policy, and the one place that decides what is worth another try within this run.

Transient: HTTP 429 and 5xx, SERVER_UNAVAILABLE, the concurrent-request variant of REQUEST_LIMIT_EXCEEDED,
UNABLE_TO_LOCK_ROW, and connection resets or timeouts. Never: 400-class validation errors, INVALID_FIELD, our
own bugs, the daily TotalRequests limit (that ends the run, see `limits`), and never a POST: a POST creates a
Bulk job (or signs in), and repeating it blindly could run the job twice.

How long: at most `max_attempts` tries, and never a back-off that would outlast the call's own time limit
(`retry_deadline_seconds`) or the run's (`max_run_seconds`): the session passes the call's Deadline as the
`limit` keyword, so the stop reads time on the run's clock (a test's fake one included). When the run's time is
what runs out, the stop raises DeadlineReached (exit 9) instead of handing back the last fault.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt
from tenacity.stop import stop_base

from connector import log
from connector.deadline import Deadline

_log = log.get("trust_ladder.salesforce")

RETRIED_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})  # idempotent for what we send
_READ_ONLY_POST = "/composite"  # our Composite calls carry only GET subrequests (connector.crm.salesforce.composite)
TRANSIENT_CODES = frozenset({"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"})
DAILY_LIMIT_MARK = "TotalRequests"
MIN_ATTEMPT_SECONDS = 1.0  # no retry is started with less time than this left


def retried(method: str, url: str) -> bool:
    """Whether a call may be sent again after a transient fault: the idempotent methods, and the one POST that
    only reads (a Composite call of GET subrequests). A POST that creates (a Bulk job, a Task) never is."""
    if method in RETRIED_METHODS:
        return True
    return method == "POST" and urlsplit(url).path.rstrip("/").endswith(_READ_ONLY_POST)


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
        code == "REQUEST_LIMIT_EXCEEDED" and _concurrency(msg) for code, msg in codes
    )


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
    _log.warning(
        "salesforce.backoff",
        call=state.kwargs.get("what", ""),
        attempt=state.attempt_number,
        wait_s=round(wait, 3),
        waited_s=round(state.idle_for, 3),
        **what,
    )


class _OutOfTime(stop_base):
    """Stop when the next back-off, and a try after it, would not fit in the call's time; raise when it is the
    run's time that would not."""

    def __call__(self, state: RetryCallState) -> bool:
        return _out_of_time(state)


def _out_of_time(state: RetryCallState) -> bool:
    limit = state.kwargs.get("limit")
    if not isinstance(limit, Deadline):
        return False
    needed = state.upcoming_sleep + MIN_ATTEMPT_SECONDS
    if limit.left() > needed:
        return False
    run = limit.root()
    if run.left() <= needed:
        raise run.reached(f"retrying {state.kwargs.get('what', 'a call')} (attempt {state.attempt_number} failed)")
    _log.warning(
        "salesforce.retry_deadline",
        call=state.kwargs.get("what", ""),
        attempts=state.attempt_number,
        waited_s=round(state.idle_for, 3),
        limit_s=limit.seconds,
    )
    return True


def policy(
    *,
    max_attempts: int,
    cap: float,
    sleep: Callable[[float], None],
    base: float = 1.0,
    rng: random.Random | None = None,
) -> Retrying:
    """Declared once; `transport.SalesforceSession` runs every idempotent request through it, as
    `retrying(attempt, limit=<the call's Deadline>, what="GET path")`."""
    return Retrying(
        retry=retry_if_result(is_transient) | retry_if_exception_type((requests.ConnectionError, requests.Timeout)),
        wait=_Wait(base, cap, rng or random.Random()),  # noqa: S311 - jitter, not cryptography
        stop=stop_after_attempt(max_attempts) | _OutOfTime(),
        sleep=sleep,
        reraise=True,
        before_sleep=_log_backoff,
        # When the attempts run out on a transient *response*, hand it back: the caller raises its usual error.
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
