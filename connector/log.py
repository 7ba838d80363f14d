"""structlog set-up: JSON lines when nobody watches (schedulers), readable lines on a terminal.

Secrets are kept out of every line twice over: a value under a secret-sounding key is masked, and every value
registered with `add_secret` (passwords, tokens, session ids, private keys, whatever the source) is masked
wherever it appears, in any field, in an exception's text, or in an error body a server echoed back. Values
that span several lines are folded onto one, so a line-oriented reader never loses their end.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = ("password", "token", "secret", "private_key", "session_id", "authorization")
MASK = "***"
_MIN_SECRET = 6  # shorter values would mask ordinary words; no real secret is that short
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def add_secret(value: str | None) -> None:
    """Remember a secret value (and each line of a multi-line one, such as a PEM key) to mask it everywhere."""
    if not value:
        return
    with _secrets_lock:
        for part in (value, *value.splitlines()):
            kept = part.strip()
            if len(kept) >= _MIN_SECRET and not kept.startswith("-----"):  # not a PEM armour line
                _secrets.add(kept)


def redact(text: str) -> str:
    """`text` with every registered secret value masked, longest first (a token inside a longer secret)."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def one_line(text: str) -> str:
    """A multi-line message folded onto one line (` | ` between lines), whole, never cut at the first line."""
    lines = [ln.strip() for ln in text.splitlines()]
    return " | ".join(ln for ln in lines if ln)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event[key] = MASK
        else:
            event[key] = _clean(event[key])
    return event


def _fold(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Multi-line text values (an error body, a message) onto one line; the traceback keeps its lines."""
    for key, value in list(event.items()):
        if key != "exception" and isinstance(value, str) and "\n" in value:
            event[key] = one_line(value)
    return event


def configure(*, json: bool | None = None, level: str = "info") -> None:
    """Logs go to stderr so that stdout stays for the summary and for `--json` output."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _fold,
            _redact,  # after the traceback is text, so a secret in an exception's message is masked there too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        # Resolve stderr at each call, so that a live progress display that redirects it prints logs above itself.
        logger_factory=lambda *_: structlog.PrintLogger(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def bind_run() -> str:
    run_id = uuid.uuid4().hex[:12]
    structlog.contextvars.bind_contextvars(run_id=run_id)
    return run_id


def current_run_id() -> str:
    return str(structlog.contextvars.get_contextvars().get("run_id", ""))


def get(name: str) -> Any:
    return structlog.get_logger(name)
