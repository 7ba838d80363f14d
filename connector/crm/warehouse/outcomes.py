"""The warehouse copy's deals for `calibrate`: Opportunity and OpportunityContactRole as Spark temp views named as
the objects, read as connector.crm.warehouse.read reads every object (the naming's table and columns, Fivetran's
deleted rows left out, the newest copy of a record copied twice, values cast to the API's types).

A sync never reads them: only the outcomes that read won deals do (the `[warehouse] opportunity` and
`opportunity_contact_role` keys).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from connector import log
from connector.config import FieldsSection, WarehouseSection
from connector.crm.warehouse import read
from connector.crm.warehouse.source import run_statement
from connector.vocabulary import OUTCOME_OBJECTS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_log = log.get("trust_ladder.warehouse")

# What a copy of each object must have for a won deal to credit a contact.
KEYS = {
    "Opportunity": ["Id", "IsWon", "CloseDate"],
    "OpportunityContactRole": ["Id", "OpportunityId", "ContactId"],
}


def register(spark: SparkSession, section: WarehouseSection, resolve: Callable[[Path], Path]) -> bool:
    """Both objects' views, when `[warehouse]` names both; False (nothing registered) when it does not."""
    located = section.objects()
    if not all(obj in located for obj in OUTCOME_OBJECTS):
        return False
    for obj in OUTCOME_OBJECTS:
        where = located[obj]
        frame = read.load(spark, section, obj, where, resolve)
        frame.createOrReplaceTempView(read.raw_name(obj))
        wanted = read.columns(obj, FieldsSection())
        lacking = read.absent(section, obj, frame, wanted)
        if lacking:
            _log.info("warehouse.columns_absent", object=obj, source=where, columns=lacking, effect="read as NULL")
        run_statement(spark, read.view(section, obj, where, frame, wanted, KEYS[obj]))
        spark.catalog.dropTempView(read.raw_name(obj))
    return True
