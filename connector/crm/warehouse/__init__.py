"""The warehouse source: the copy of Salesforce that a pipeline (Fivetran, Airbyte, a Databricks or Data Cloud
connector) keeps in a lakehouse, read in place by Spark instead of pulled through the API onto one machine.

`register` reads the objects `[warehouse]` names, in Salesforce or Fivetran naming (connector.crm.warehouse.naming),
into Spark temp views named as the objects (connector.crm.warehouse.read), then builds `crm_contact` and
`crm_activity` from them with the very statements the DuckDB backends run (connector.crm.local.activities and
.quarantine, rendered by connector.engine.dialect): the same rows set aside, the same columns, the same meaning.
`crm_contact` also has `copied_at`, when the copy of each row was taken, so the diff can be corrected by what was
written since. `export` writes a local CRM out as such a warehouse (for trials, tests and benchmarks).
"""

from __future__ import annotations

from connector.crm.warehouse.source import WarehouseFigures, register, skipped_rows

__all__ = ["WarehouseFigures", "register", "skipped_rows"]
