"""An admin whose org has a trust field of the wrong kind: `fields check` says which and why, and a sync writes
nothing (issue 9). The fake org serves Contact's describe in the shape of the REST API's "sObject Describe"
resource (fields[].type, length, custom, calculated, htmlFormatted, extraTypeInfo; SOAP API Developer Guide,
"DescribeSObjectResult" > Field)."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from connector.crm.salesforce.commands import fields
from connector.errors import ConfigError
from tests.salesforce.conftest import Run


def test_fields_check_names_a_text_stage_and_a_rich_reason(run: Run) -> None:
    run.org.field_changes["Trust_Stage__c"] = {"type": "string", "length": 255, "picklistValues": []}
    run.org.field_changes["Trust_Reason__c"] = {"htmlFormatted": True, "extraTypeInfo": "richtextarea"}
    result = CliRunner().invoke(fields, ["check"], obj=run.config())
    assert isinstance(result.exception, ConfigError)
    assert "2 problems" in str(result.exception)
    assert [line for line in result.output.splitlines() if line.startswith("  Contact.")] == [
        "  Contact.Trust_Stage__c ([fields] stage) is a Text field (describe type string); it must be a Picklist",
        (
            "  Contact.Trust_Reason__c ([fields] reason) is a Rich Text Area, which would read our "
            "text as HTML; it must "
            "be a Long Text Area (32,768 characters, as `fields deploy` creates)"
        ),
    ]


def test_sync_writes_nothing_while_a_field_is_of_the_wrong_kind(run: Run) -> None:
    ada = run.org.contact("Ada")
    run.org.task(ada, run.as_of - dt.timedelta(days=10), "Re: hello", TaskSubtype="Email")
    run.org.field_changes["Trust_Next_Step__c"] = {"length": 40}
    with pytest.raises(ConfigError, match="will not write") as err:
        run.sync()
    assert "Contact.Trust_Next_Step__c ([fields] next_step) is a Text field of 40 characters" in str(err.value)
    assert run.org.writes == []
