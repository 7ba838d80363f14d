"""Issue 10: secrets masked whatever the source, messages kept whole on one line, and `fields deploy` failures
given their own exit codes with the endpoint and status named."""

from __future__ import annotations

import json

import pytest
import responses
from click.testing import CliRunner

from connector import log
from connector.crm.salesforce.commands import fields
from connector.errors import CrmError
from connector.exit_codes import ExitCode
from tests.salesforce import fake_org
from tests.salesforce.conftest import Run

METADATA = f"https://{fake_org.INSTANCE}/services/Soap/m/59.0/"


def test_an_access_token_echoed_in_an_error_body_is_masked_in_the_message_and_the_log(
    run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    """'Status Codes and Error Responses' (a JSON array of {"message", "errorCode"}): a misbehaving proxy or
    server echoes the session's own token, across several lines. The message keeps every line, on one."""
    run.org.contact("Ada")
    token = "00Dfake!SESSION1"  # the fake org's first session
    run.org.inject(
        "GET",
        r"^query/$",
        400,
        code="MALFORMED_QUERY",
        message=f"Bearer {token} was sent with\na query the org could not parse\nat Row:1:Column:8",
    )
    log.configure(json=True)
    with pytest.raises(CrmError) as err:
        run.sync()
    message = str(err.value)
    assert token not in message
    assert "***" in message
    assert "\n" not in message
    assert "MALFORMED_QUERY" in message
    assert "at Row:1:Column:8" in message  # the last line too: never cut at the first
    log.get("t").error("command.failed", message=f"echo {token}", detail=f"one\n{token}\nthree")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert token not in json.dumps(line)
    assert line["detail"] == "one | *** | three"


def test_every_secret_of_a_sign_in_is_masked_in_any_text() -> None:
    """A value registered by the sign-in is masked wherever it appears, under any key, inside any text."""
    log.add_secret("refresh-token-5Aep861")
    assert log.redact("the token refresh-token-5Aep861 expired") == "the token *** expired"
    assert log.redact(f"{fake_org.PASSWORD}") in ("***", fake_org.PASSWORD)  # registered once a sync signs in


def test_fields_deploy_names_the_endpoint_and_status_of_a_metadata_api_404(run: Run) -> None:
    """The Metadata API answers an HTTP 404 with an HTML page, not a SOAP envelope: the error names the endpoint
    and the status instead of a parser's "'NoneType' object has no attribute 'getroottree'"."""
    assert run.rsps is not None
    run.rsps.add(
        responses.POST,
        METADATA,
        status=404,
        content_type="text/html",
        body="<html><body><h1>Not Found</h1>\n<p>The requested URL was not found.</p></body></html>",
    )
    result = CliRunner().invoke(fields, ["deploy"], obj=run.config())
    assert isinstance(result.exception, CrmError)
    assert result.exception.exit_code == ExitCode.CRM_DOWN
    message = str(result.exception)
    assert "404" in message
    assert "/services/Soap/m/59.0/" in message
    assert "getroottree" not in message


def test_fields_deploy_exits_7_when_the_org_has_no_api_calls_left(run: Run) -> None:
    """'SOAP API Developer Guide' fault: faultcode sf:REQUEST_LIMIT_EXCEEDED, faultstring naming TotalRequests."""
    assert run.rsps is not None
    fault = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
        'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com">'
        "<soapenv:Body><soapenv:Fault><faultcode>sf:REQUEST_LIMIT_EXCEEDED</faultcode>"
        "<faultstring>REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.</faultstring>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    run.rsps.add(responses.POST, METADATA, status=500, content_type="text/xml", body=fault)
    result = CliRunner().invoke(fields, ["deploy"], obj=run.config())
    assert result.exception is not None
    assert result.exception.exit_code == ExitCode.BUDGET  # type: ignore[attr-defined]
    assert "TotalRequests" in str(result.exception)


def test_fields_deploy_with_a_refused_sign_in_exits_6_and_never_reaches_the_metadata_api(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOAP login fault INVALID_LOGIN ("Understanding the Username-Password OAuth Flow" / SOAP login)."""
    assert run.rsps is not None
    soap = run.rsps.add(responses.POST, METADATA, body="", content_type="text/xml")
    monkeypatch.setenv("SF_PASSWORD", "wrong-password-123")
    result = CliRunner().invoke(fields, ["deploy"], obj=run.config())
    assert isinstance(result.exception, CrmError)
    assert result.exception.exit_code == ExitCode.CRM_DOWN
    assert "refused the sign-in" in str(result.exception)
    assert "wrong-password-123" not in str(result.exception)
    assert soap.call_count == 0
