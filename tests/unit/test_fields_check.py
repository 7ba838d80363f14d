"""`fields check` confirms, before any write, that each configured field is a custom field of ours and of the
kind its value needs (issue 9): a mismatch names the field, what it is, and what it must be.

The describe payloads follow the Field shape of the sObject Describe resource (REST API Developer Guide, "sObject
Describe", /services/data/vXX.X/sobjects/Contact/describe), whose fields are documented in the SOAP API Developer
Guide, "DescribeSObjectResult" > Field: name, type, length, custom, calculated, updateable, htmlFormatted,
extraTypeInfo (plaintextarea / richtextarea for a textarea), picklistValues[].value / active.
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_describesobjects_describesobjectresult.htm
"""

from __future__ import annotations

from typing import Any

import pytest

from connector.config import FieldsSection
from connector.crm import RuleNeeds
from connector.crm.salesforce import fields as sf_fields

_SOAP_TYPES = {
    "string": "xsd:string",
    "textarea": "xsd:string",
    "picklist": "xsd:string",
    "multipicklist": "xsd:string",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "email": "xsd:string",
    "double": "xsd:double",
}


def _field(name: str, typ: str, length: int = 0, **changes: Any) -> dict[str, Any]:
    """One entry of describe's `fields`, with the attributes the check reads and their usual neighbours."""
    out: dict[str, Any] = {
        "name": name,
        "label": name.removesuffix("__c").replace("_", " "),
        "type": typ,
        "soapType": _SOAP_TYPES[typ],
        "length": length,
        "byteLength": length * 3,
        "custom": name.endswith("__c"),
        "calculated": False,
        "calculatedFormula": None,
        "createable": True,
        "updateable": True,
        "nillable": True,
        "htmlFormatted": False,
        "extraTypeInfo": "plaintextarea" if typ == "textarea" else None,
        "picklistValues": [],
        "restrictedPicklist": typ in ("picklist", "multipicklist"),
        "unique": False,
        "externalId": False,
    }
    out.update(changes)
    return out


def _values(*values: str) -> list[dict[str, Any]]:
    return [{"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in values]


def _describe(**replace: dict[str, Any]) -> dict[str, Any]:
    """Contact as `fields deploy` leaves it, plus a few standard fields; `replace` swaps one field's describe."""
    good = {
        "Trust_Stage__c": _field("Trust_Stage__c", "picklist", 255, picklistValues=_values("Fringe", "Friend")),
        "Trust_Stage_Since__c": _field("Trust_Stage_Since__c", "date"),
        "Trust_Flags__c": _field("Trust_Flags__c", "multipicklist", 4099, picklistValues=_values("Missing")),
        "Trust_Next_Step__c": _field("Trust_Next_Step__c", "string", 255),
        "Trust_Reason__c": _field("Trust_Reason__c", "textarea", 32768),
        "Trust_Rules_Version__c": _field("Trust_Rules_Version__c", "string", 64),
        "Id": _field("Id", "id", 18, custom=False, updateable=False, createable=False, nillable=False),
        "FirstName": _field("FirstName", "string", 40, custom=False),
        "Email": _field("Email", "email", 80, custom=False),
        "OwnerId": _field("OwnerId", "reference", 18, custom=False),
        "CreatedDate": _field("CreatedDate", "datetime", custom=False, updateable=False, createable=False),
    }
    good.update(replace)
    return {"name": "Contact", "label": "Contact", "keyPrefix": "003", "custom": False, "fields": list(good.values())}


def test_the_deployed_fields_pass() -> None:
    assert sf_fields.check(_describe(), FieldsSection(), None) == []


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            _field("Trust_Stage__c", "string", 255),
            "Contact.Trust_Stage__c ([fields] stage) is a Text field (describe type string); it must be a Picklist",
        ),
        (
            _field("Trust_Stage_Since__c", "datetime"),
            (
                "Contact.Trust_Stage_Since__c ([fields] stage_since) is a Date/Time field (describe "
                "type datetime); it must be "
                "a Date"
            ),
        ),
        (
            _field("Trust_Flags__c", "picklist", 255),
            (
                "Contact.Trust_Flags__c ([fields] flags) is a Picklist field (describe type "
                "picklist); it must be a Picklist "
                "(Multi-Select)"
            ),
        ),
        (
            _field("Trust_Next_Step__c", "string", 80),
            (
                "Contact.Trust_Next_Step__c ([fields] next_step) is a Text field of 80 characters; "
                "it must be a Text field of "
                "255 characters"
            ),
        ),
        (
            _field("Trust_Next_Step__c", "double", 0),
            (
                "Contact.Trust_Next_Step__c ([fields] next_step) is a Number field (describe type "
                "double); it must be a Text "
                "field of 255 characters"
            ),
        ),
        (
            _field("Trust_Reason__c", "textarea", 255),
            (
                "Contact.Trust_Reason__c ([fields] reason) is a Text Area field of 255 characters; "
                "it must be a Long Text Area "
                "(32,768 characters, as `fields deploy` creates)"
            ),
        ),
        (
            _field("Trust_Reason__c", "textarea", 32768, htmlFormatted=True, extraTypeInfo="richtextarea"),
            (
                "Contact.Trust_Reason__c ([fields] reason) is a Rich Text Area, which would read our "
                "text as HTML; it must be "
                "a Long Text Area (32,768 characters, as `fields deploy` creates)"
            ),
        ),
        (
            _field("Trust_Rules_Version__c", "string", 20),
            (
                "Contact.Trust_Rules_Version__c ([fields] rules_version) is a Text field of 20 "
                "characters; it must be a Text "
                "field of 64 characters"
            ),
        ),
        (
            _field(
                "Trust_Rules_Version__c", "string", 1300, calculated=True, updateable=False, calculatedFormula="'v1'"
            ),
            (
                "Contact.Trust_Rules_Version__c ([fields] rules_version) is a formula field and "
                "cannot be written: it must be "
                "a plain Text field of 64 characters"
            ),
        ),
        (
            _field("Trust_Stage__c", "picklist", 255, custom=False),
            (
                "Contact.Trust_Stage__c ([fields] stage) is a standard field, not one of ours: "
                "trust-ladder writes only custom "
                "fields of its own; it must be a Picklist (default Trust_Stage__c)"
            ),
        ),
    ],
)
def test_a_field_of_the_wrong_kind_is_named_with_what_it_is_and_should_be(field: dict[str, Any], message: str) -> None:
    assert sf_fields.check(_describe(**{field["name"]: field}), FieldsSection(), None) == [message]


def test_a_longer_text_or_a_text_area_is_enough_for_the_next_step() -> None:
    for field in (_field("Trust_Next_Step__c", "string", 300), _field("Trust_Next_Step__c", "textarea", 1000)):
        assert sf_fields.check(_describe(Trust_Next_Step__c=field), FieldsSection(), None) == []


def test_a_standard_field_is_refused_even_if_the_config_were_to_name_it() -> None:
    """The config refuses non-__c names; the describe check refuses them again, by what the org says."""
    fields = FieldsSection.model_construct(**{**FieldsSection().model_dump(), "next_step": "FirstName"})
    (problem,) = sf_fields.check(_describe(), fields, None)
    assert problem.startswith("Contact.FirstName ([fields] next_step) is a standard field, not one of ours")


def test_flag_labels_must_fit_the_multi_select_picklist_together() -> None:
    labels = [f"Flag {i:02d} " + "x" * 200 for i in range(21)]  # 21 x 208 + 20 separators = 4,388 characters
    flags = _field("Trust_Flags__c", "multipicklist", 4099, picklistValues=_values(*labels))

    rules = RuleNeeds(flag_labels=tuple(labels))
    problems = sf_fields.check(_describe(Trust_Flags__c=flags), FieldsSection(), rules)
    assert problems == [
        (
            "Contact.Trust_Flags__c holds 4,099 characters, but the rule file's flag labels take 4,388 "
            "when all are open: shorten them"
        )
    ]
