"""How a Salesforce refusal or an unreachable org ends a run: our CrmError (exit 6), saying what we were doing,
and, for a run stopped part-way, what it had done by then."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import requests
from simple_salesforce.exceptions import SalesforceError

from connector import log
from connector.crm import ApplyResult
from connector.crm.salesforce.jobs import error_text
from connector.errors import CrmError, TrustLadderError

_log = log.get("trust_ladder.salesforce")


@contextlib.contextmanager
def salesforce_errors(doing: str) -> Iterator[None]:
    """simple-salesforce's and requests' exceptions become our CrmError (exit 6), saying what we were doing."""
    try:
        yield
    except SalesforceError as exc:
        content = exc.content
        body = json.dumps(content) if isinstance(content, list) else str(content)
        raise CrmError(
            log.redact(
                f"Salesforce refused the call while {doing}: HTTP {exc.status} from "
                f"{exc.resource_name or exc.url}: {error_text(body)}"
            )
        ) from None
    except requests.RequestException as exc:
        raise CrmError(f"could not reach Salesforce while {doing}: {type(exc).__name__}") from None


def stopped(exc: TrustLadderError, done: ApplyResult, api_calls: int, event: str) -> None:
    """The run stops early: the exception carries what was written, every refusal so far, the calls spent."""
    done.api_calls = api_calls
    exc.partial = done
    _log.warning(
        event, changed=done.changed, failed=len(done.failures), api_calls=done.api_calls, reason=type(exc).__name__
    )
