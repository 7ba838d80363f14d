"""Journeys of an admin connecting an org: the four sign-in modes, a refused sign-in, the fields check, and
secrets that never reach a log line or an error message."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from connector.cli import main
from connector.config import FieldsSection
from connector.crm.salesforce import fields as sf_fields
from connector.crm.salesforce.commands import fields
from connector.crm.salesforce.transport import SessionExpired
from connector.errors import ConfigError, CrmError
from connector.exit_codes import ExitCode
from connector.ruleset import compiler
from tests.conftest import DEFAULT_RULES
from tests.salesforce import fake_org
from tests.salesforce.conftest import Run


def _one_contact(run: Run) -> str:
    ada = run.org.contact("Ada")
    run.org.task(ada, run.as_of - dt.timedelta(days=10), "Re: hello", TaskSubtype="Email")
    return ada


def _private_key(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "server.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


@pytest.mark.parametrize("mode", ["password", "jwt", "client_credentials", "session"])
def test_each_sign_in_mode_reaches_the_org(run: Run, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SOAP login (serverUrl, sessionId) and OAuth token responses ({"access_token", "instance_url"})."""
    ada = _one_contact(run)
    settings: dict[str, Any] = {"auth": mode}
    if mode == "jwt":
        monkeypatch.setenv("SF_CONSUMER_KEY", fake_org.CLIENT_KEY)
        settings["private_key_file"] = _private_key(run.folder)
    elif mode == "client_credentials":
        monkeypatch.setenv("SF_CONSUMER_KEY", fake_org.CLIENT_KEY)
        monkeypatch.setenv("SF_CONSUMER_SECRET", fake_org.CLIENT_SECRET)
        settings["domain"] = "acme.my"
    elif mode == "session":
        run.org.sessions.add("00Dfake!EXISTING")
        monkeypatch.setenv("SF_ACCESS_TOKEN", "00Dfake!EXISTING")
        settings["instance_url"] = f"https://{fake_org.INSTANCE}"
    result = run.sync(**settings)
    assert result.changed == 1
    assert run.org.fields_of(ada, "Trust_Stage__c") == ("Friend",)
    assert run.org.logins == (0 if mode == "session" else 1)


def test_an_expired_access_token_is_a_clear_error_not_a_retry(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """'Status Codes and Error Responses': 401 INVALID_SESSION_ID, with nothing to renew the session with."""
    _one_contact(run)
    monkeypatch.setenv("SF_ACCESS_TOKEN", "00Dfake!STALE")
    with pytest.raises(SessionExpired, match="sf org display"):
        run.sync(auth="session", instance_url=f"https://{fake_org.INSTANCE}")
    assert run.org.logins == 0
    assert run.waits == []


def _config_file(run: Run) -> Path:
    path = run.folder / "trust-ladder.toml"
    path.write_text(
        f'[crm]\nbackend = "salesforce"\n[salesforce]\nusername = "{fake_org.USERNAME}"\n'
        f'mirror = "mirror.duckdb"\npoll_seconds = 0\n[rules]\npath = "{DEFAULT_RULES}"\n'
        '[state]\npath = "state.duckdb"\n'
    )
    return path


def test_a_refused_sign_in_exits_6_at_once_without_retrying_or_echoing_the_secret(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOAP login fault: 500 with sf:exceptionCode INVALID_LOGIN."""
    _one_contact(run)
    monkeypatch.setenv("SF_PASSWORD", "wrong-password-do-not-print")
    result = CliRunner().invoke(
        main, ["--config", str(_config_file(run)), "--log-format", "json", "sync", "--as-of", run.as_of.isoformat()]
    )
    assert result.exit_code == ExitCode.CRM_DOWN
    assert "refused the sign-in" in result.output
    assert "INVALID_LOGIN" in result.output
    assert "wrong-password-do-not-print" not in result.output
    assert run.org.failed_logins == 1
    assert run.org.calls == []


def test_a_missing_secret_names_the_variable_not_the_value(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SF_PASSWORD")
    with pytest.raises(ConfigError, match="SF_PASSWORD is not set"):
        run.sync()


def test_fields_check_says_which_field_is_missing_and_which_picklist_value_is_lacking(run: Run) -> None:
    """'Get Field and Other Metadata for an Object' (describe: fields[].name, type, picklistValues[].value)."""
    run.org.missing_fields.add("Trust_Reason__c")
    run.org.picklists["Trust_Stage__c"].remove("Forever")
    run.org.picklists["Trust_Flags__c"] = ["Missing listening"]
    result = CliRunner().invoke(fields, ["check"], obj=run.config())
    assert isinstance(result.exception, ConfigError)
    assert "3 problems" in str(result.exception)
    assert [line for line in result.output.splitlines() if line.startswith("  Contact.")] == [
        "  Contact.Trust_Stage__c lacks the picklist value 'Forever' that the rule file's rungs need",
        "  Contact.Trust_Flags__c lacks the picklist value 'Missing thank-you' that the rule file's flags need",
        (
            "  Contact.Trust_Reason__c is missing: create it as LongTextArea (`trust-ladder fields deploy`, or deploy "
            "salesforce/force-app)"
        ),
    ]


def test_fields_check_passes_on_a_complete_org(run: Run) -> None:
    result = CliRunner().invoke(fields, ["check"], obj=run.config())
    assert result.exit_code == 0, result.output
    assert "Contact fields ok" in result.output
    assert "warning" not in result.output
    assert ("GET", "tooling/query/") in run.org.calls  # FieldDefinition.IsFieldHistoryTracked


def test_fields_check_warns_when_the_stage_keeps_no_history_but_still_passes(run: Run) -> None:
    """Tooling API 'FieldDefinition' (IsFieldHistoryTracked): off on the stage, on for the flags."""
    run.org.untracked_history.add("Trust_Stage__c")
    result = CliRunner().invoke(fields, ["check"], obj=run.config())
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("  warning:")] == [
        (
            "  warning: Contact.Trust_Stage__c keeps no field history, so the Contact's history will not show each "
            "move: deploy salesforce/force-app or run `trust-ladder fields deploy` (or Setup > Object Manager > "
            "Contact > Fields & Relationships > Set History Tracking)"
        ),
    ]
    assert "Contact fields ok" in result.output


def test_sync_writes_even_when_field_history_is_off(run: Run) -> None:
    ada = _one_contact(run)
    run.org.untracked_history.update({"Trust_Stage__c", "Trust_Flags__c"})
    assert run.sync().changed == 1
    assert run.org.fields_of(ada, "Trust_Stage__c") == ("Friend",)
    assert all(path != "tooling/query/" for _, path in run.org.calls)  # the check is `fields check`'s alone


def test_sync_refuses_to_write_while_the_fields_check_fails_and_says_why(run: Run) -> None:
    _one_contact(run)
    run.org.readonly_fields.add("Trust_Next_Step__c")
    with pytest.raises(ConfigError, match="will not write") as err:
        run.sync()
    assert "Trust_Next_Step__c is not writable" in str(err.value)
    assert run.org.writes == []
    assert run.sync(dry_run=True).planned_records == 1  # a dry run still shows what would change


def test_sync_stops_before_pulling_when_a_trust_field_is_missing(run: Run) -> None:
    _one_contact(run)
    run.org.missing_fields.add("Trust_Flags__c")
    with pytest.raises(ConfigError, match="fields deploy"):
        run.sync()
    assert [p for _, p in run.org.calls] == ["sobjects/Contact/describe"]


def test_secrets_never_appear_in_log_lines_or_errors(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole run with a renewal and a back-off, then a refused sign-in: no secret in any event or message."""
    _one_contact(run)
    run.org.expire_at = 2
    run.org.inject("POST", r"^composite$", 503, code="SERVER_UNAVAILABLE", message="Server unavailable")
    with capture_logs() as logs:
        run.sync()
        monkeypatch.setenv("SF_PASSWORD", "another-secret-value")
        (run.folder / "mirror.duckdb").unlink()
        with pytest.raises(Exception) as err:
            run.sync()
    text = repr(logs) + str(err.value)
    assert logs, "the run logged nothing"
    assert any(e["event"] == "salesforce.session_renewed" for e in logs)
    assert any(e["event"] == "salesforce.backoff" for e in logs)
    for secret in (fake_org.PASSWORD, fake_org.SECURITY_TOKEN, "another-secret-value", "SESSION1", "SESSION2"):
        assert secret not in text


def test_the_shipped_metadata_passes_the_fields_check_of_the_default_rules() -> None:
    """The source-format fields in salesforce/force-app, read as a describe would report them, need nothing."""
    ns = {"m": "http://soap.sforce.com/2006/04/metadata"}
    root = Path(__file__).resolve().parents[2] / "salesforce/force-app/main/default/objects/Contact"
    types = {
        "Picklist": "picklist",
        "MultiselectPicklist": "multipicklist",
        "Date": "date",
        "Text": "string",
        "LongTextArea": "textarea",
    }
    described = []
    for path in sorted((root / "fields").glob("*.field-meta.xml")):
        xml = ET.parse(path).getroot()  # noqa: S314 - our own metadata files
        values = [v.text for v in xml.findall(".//m:value/m:fullName", ns)]
        described.append(
            {
                "name": xml.findtext("m:fullName", namespaces=ns),
                "updateable": True,
                "custom": True,
                "type": types[xml.findtext("m:type", namespaces=ns) or ""],
                "length": int(xml.findtext("m:length", default="0", namespaces=ns)),
                "picklistValues": [{"value": v, "active": True} for v in values],
            }
        )
    rules = compiler.load(DEFAULT_RULES)
    assert sf_fields.check({"fields": described}, FieldsSection(), rules.needs()) == []
    tracked = {
        xml.findtext("m:fullName", namespaces=ns)
        for xml in (ET.parse(p).getroot() for p in (root / "fields").glob("*.field-meta.xml"))  # noqa: S314
        if xml.findtext("m:trackHistory", namespaces=ns) == "true"
    }
    assert tracked == {"Trust_Stage__c", "Trust_Flags__c"}
    contact = ET.parse(root / "Contact.object-meta.xml").getroot()  # noqa: S314
    assert contact.findtext("m:enableHistory", namespaces=ns) == "true"  # field history needs it on the object
    views = {
        ET.parse(p).getroot().findtext("m:label", namespaces=ns)  # noqa: S314
        for p in (root / "listViews").glob("*.listView-meta.xml")
    }
    assert views == {
        "Trust: missing thank-you",
        "Trust: missing listening",
        "My contacts: missing thank-you",
        "My contacts: missing listening",
        "Slipping: drops within 14 days",
        "Moved down this month",
    }
    scopes = {
        ET.parse(p).getroot().findtext("m:label", namespaces=ns):  # noqa: S314
        ET.parse(p).getroot().findtext("m:filterScope", namespaces=ns)  # noqa: S314
        for p in (root / "listViews").glob("*.listView-meta.xml")
    }
    assert {label: scope for label, scope in scopes.items() if label and label.startswith("My ")} == {
        "My contacts: missing thank-you": "Mine",
        "My contacts: missing listening": "Mine",
    }


def test_both_permission_sets_let_their_users_read_every_trust_field() -> None:
    """Reading a field is what shows its moves in Contact History, on the card and in reports."""
    ns = {"m": "http://soap.sforce.com/2006/04/metadata"}
    folder = Path(__file__).resolve().parents[2] / "salesforce/force-app/main/default/permissionsets"
    six = {f"Contact.{name}" for name in FieldsSection().model_dump().values()}
    for name, editable in (("Trust_Ladder_Sync", "true"), ("Trust_Ladder_Read", "false")):
        root = ET.parse(folder / f"{name}.permissionset-meta.xml").getroot()  # noqa: S314
        grants = {
            p.findtext("m:field", namespaces=ns): (
                p.findtext("m:readable", namespaces=ns),
                p.findtext("m:editable", namespaces=ns),
            )
            for p in root.findall("m:fieldPermissions", ns)
        }
        # The rep's listening answer on activities: reps set it (the card too); the sync only reads it.
        listening = ("true", "false" if name == "Trust_Ladder_Sync" else "true")
        assert grants == {**dict.fromkeys(six, ("true", editable)), "Activity.Trust_Listening__c": listening}, name


def test_the_listening_answer_ships_as_a_picklist_that_can_be_left_empty() -> None:
    """A checkbox is never empty (unchecked is false), and an empty answer is what lets the words decide: the
    field is a picklist of 'true' and 'false' with no default, which the pull casts to a boolean."""
    ns = {"m": "http://soap.sforce.com/2006/04/metadata"}
    path = Path(__file__).resolve().parents[2] / (
        "salesforce/force-app/main/default/objects/Activity/fields/Trust_Listening__c.field-meta.xml"
    )
    xml = ET.parse(path).getroot()  # noqa: S314 - our own metadata file
    assert xml.findtext("m:type", namespaces=ns) == "Picklist"
    values = {
        v.findtext("m:fullName", namespaces=ns): v.findtext("m:default", namespaces=ns)
        for v in xml.iter("{http://soap.sforce.com/2006/04/metadata}value")
    }
    assert values == {"true": "false", "false": "false"}


def _upsert_response(results: list[tuple[str, bool, str]]) -> str:
    """'upsertMetadata()' and 'UpsertResult' (Metadata API Developer Guide): one result per component."""
    body = "".join(
        f"<result><created>true</created><fullName>{name}</fullName><success>{'true' if ok else 'false'}</success>"
        + ("" if ok else f"<errors><message>{msg}</message><statusCode>FIELD_INTEGRITY_EXCEPTION</statusCode></errors>")
        + "</result>"
        for name, ok, msg in results
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/'
        'envelope/" xmlns="http://soap.sforce.com/2006/04/metadata"><soapenv:Body><upsertMetadataResponse>'
        f"{body}</upsertMetadataResponse></soapenv:Body></soapenv:Envelope>"
    )


def test_fields_deploy_upserts_the_eight_fields_with_the_rule_files_picklist_values(run: Run) -> None:
    assert run.rsps is not None
    names = [f"Contact.{n}" for n in run.config().fields.model_dump().values()]
    soap = run.rsps.add(
        responses.POST,
        f"https://{fake_org.INSTANCE}/services/Soap/m/59.0/",
        body=_upsert_response([(n, True, "") for n in names]),
        content_type="text/xml",
    )
    result = CliRunner().invoke(fields, ["deploy"], obj=run.config())
    assert result.exit_code == 0, result.output
    assert "Deployed 8 Contact fields" in result.output
    (call,) = soap.calls
    sent = call.request.body.decode() if isinstance(call.request.body, bytes) else str(call.request.body)
    assert "upsertMetadata" in sent
    for name in names:
        assert f"<ns0:fullName>{name}</ns0:fullName>" in sent or f">{name}<" in sent
    for value in ("Fringe", "Forever", "Missing thank-you", "Missing listening"):
        assert f">{value}<" in sent  # picklist values come from the rule file's rungs and flag labels
    tracked = dict(re.findall(r"<ns0:fullName>Contact\.(\w+)</ns0:fullName>.*?<ns0:trackHistory>(\w+)<", sent))
    assert tracked == {
        "Trust_Stage__c": "true",
        "Trust_Stage_Since__c": "false",
        "Trust_Flags__c": "true",
        "Trust_Next_Step__c": "false",
        "Trust_Reason__c": "false",
        "Trust_Rules_Version__c": "false",
        "Trust_Held_Until__c": "false",
        "Trust_Previous_Stage__c": "false",
    }
    previous = sent.split("Contact.Trust_Previous_Stage__c", 1)[1].split("</ns0:metadata>", 1)[0]
    assert re.findall(r"<ns0:fullName>(\w+)</ns0:fullName>", previous) == [
        "Fringe",
        "Friend",
        "Familiar",
        "Faithful",
        "Forever",
    ]  # the previous rung takes the same values as the rung
    assert "with field history on Trust_Stage__c and Trust_Flags__c" in result.output


def test_fields_deploy_reports_a_refused_component_and_exits_6(run: Run) -> None:
    assert run.rsps is not None
    names = [f"Contact.{n}" for n in run.config().fields.model_dump().values()]
    results = [(n, n != names[0], "Cannot change the type of a field in use") for n in names]
    run.rsps.add(
        responses.POST,
        f"https://{fake_org.INSTANCE}/services/Soap/m/59.0/",
        body=_upsert_response(results),
        content_type="text/xml",
    )
    result = CliRunner().invoke(fields, ["deploy"], obj=run.config())
    assert isinstance(result.exception, CrmError)
    assert result.exception.exit_code == ExitCode.CRM_DOWN  # what `trust-ladder fields deploy` exits with
    assert "Cannot change the type of a field in use" in str(result.exception)
