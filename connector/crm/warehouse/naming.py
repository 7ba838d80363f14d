"""How a warehouse names Salesforce's objects and fields: as the API does, or as Fivetran's Salesforce connector
writes them. A rule, not a list per vendor: anything named otherwise is set in `[warehouse.columns.<object>]`.

Fivetran (https://fivetran.com/docs/connectors/applications/salesforce/connector-schema): one table per object,
named in snake_case (`event_relation`); columns in snake_case of the API name (`event_id`, `relation_id`,
`system_modstamp`, `is_deleted`); a custom field's `__c` suffix becomes `_c`. Its system columns
(https://fivetran.com/docs/core-concepts/system-columns-and-tables): `_fivetran_synced` (UTC timestamp of the sync
that wrote the row), `_fivetran_deleted` (the row was deleted in the source), and in history mode
`_fivetran_active` (the current version of the record; older versions stay as rows with `_fivetran_active` false,
https://fivetran.com/docs/core-concepts/sync-modes/history-mode/sample-queries). A destination may hold a
normalised name that differs from the rule (Fivetran's schema config lists each column's `name_in_destination`,
https://fivetran.com/docs/connectors/applications/salesforce/troubleshooting/map-source-destination-names): that is
what the mapping is for.
"""

from __future__ import annotations

import re
from typing import Literal

from connector.config import WAREHOUSE_OBJECTS, WarehouseSection

Naming = Literal["salesforce", "fivetran"]

FIVETRAN_SYNCED = "_fivetran_synced"
FIVETRAN_DELETED = "_fivetran_deleted"
FIVETRAN_ACTIVE = "_fivetran_active"
SYSTEM_MODSTAMP = "SystemModstamp"

OBJECT_KEYS = {obj: key for key, obj in WAREHOUSE_OBJECTS.items()}

_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")  # HTMLBody -> HTML_Body
_WORD = re.compile(r"([a-z0-9])([A-Z])")  # WhoId -> Who_Id
_RUNS = re.compile(r"_+")  # Trust_Stage__c -> Trust_Stage_c


def snake_case(api_name: str) -> str:
    """WhoId -> who_id, ActivityDate -> activity_date, Trust_Stage__c -> trust_stage_c, EmailMessage ->
    email_message."""
    return _RUNS.sub("_", _WORD.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", api_name))).lower()


def default_column(api_name: str, naming: Naming) -> str:
    return snake_case(api_name) if naming == "fivetran" else api_name


def table_name(obj: str, naming: Naming) -> str:
    """The name a pipeline gives the object's table (or folder): Task, or task under Fivetran naming."""
    return snake_case(obj) if naming == "fivetran" else obj


def column(section: WarehouseSection, obj: str, api_name: str) -> str:
    """The warehouse column holding `obj.api_name`: the mapping's, else the naming rule's."""
    mapping = section.columns.get(OBJECT_KEYS[obj], {})
    override: str | None = mapping.get(api_name)
    return override if override is not None else default_column(api_name, section.naming)


def copied_at(section: WarehouseSection) -> str:
    """The Contact column that says when each row was copied: `[warehouse] copied_at`, else Fivetran's sync time,
    else SystemModstamp (the copy is at least as new as the last change it holds)."""
    if section.copied_at is not None:
        return section.copied_at
    if section.naming == "fivetran":
        return FIVETRAN_SYNCED
    return column(section, "Contact", SYSTEM_MODSTAMP)
