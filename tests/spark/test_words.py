"""A word list decides every text the same on Spark (RLIKE, java.util.regex) as on DuckDB (regexp_matches, RE2):
the subjects and notes reps write, and the ones built to tell the two regex engines apart (case, Unicode, line
breaks, punctuation between the words of a phrase). Skips, saying why, when pyspark or Java is missing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from connector import sql
from connector.engine import dialect
from connector.ruleset.compiler import activity_fields
from connector.ruleset.expr import Symbol, compile_expr
from tests.spark import needs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = needs.SPARK

LISTS = {
    "listening": [
        *["hear", "ask about", "understand", "shadow", "check in", "1:1", "qbr", "what matters", "discover*"],
        *["rückmeldung", "ÉCOUTER", "straße"],
    ],
    "generic": ["call", "call with ...", "coffee with ..."],
    "selling": ["present", "presentation", "pitch", "demo", "upsell", "negotiat*", "price", "contract terms"],
}
ROWS = [
    ("Lunch", "Mostly to hear about their plans for the spring"),
    ("Coffee", "We asked about what worries them"),
    ("Call to understand their goals for 2027", None),
    ("Site visit - shadowed their support team", ""),
    ("Renewal negotiation check-in", None),
    ("1:1 on contract terms", None),
    ("Price increase needs discussion", None),
    ("Upsell QBR - present premium tier", None),
    ("CHECK-IN", "line one\ncheck\nin"),  # a phrase never spans a line break
    ("Check\tin", "a quick check in"),
    ("rehearsal", "wheat"),
    ("Hear", "\u00e9hear\u00e9"),  # accented letters around a word: a boundary to both engines
    ("HEARİNG", None),  # dotted capital I lower-cases differently from i
    ("\u212aeep in touch: \u017fhadow day", "PRE\u017fENT"),  # Kelvin sign, long s: case-folded by RE2's (?i) only
    ("RÜCKMELDUNG zum Piloten", "réunion pour Écouter; STRASSE"),  # accented capitals fold; ß has no one capital
    ("Présentation", "Prä-sentation"),
    ("qbr\r\n", "x$y"),
    (None, None),
    ("Discovery: what matters most", "   "),
    ("call", "Demo\u2028pitch"),
    ("Call with Maria", None),
    ("Call with Dr. Ana Lopez-Garc\u00eda", None),  # a name of more than four words to both engines
    ("Coffee with\nDana", None),
    ("Call with Maria about the price", None),
]


def _conditions() -> list[str]:
    return [
        "MENTIONS(listening, Subject, Description)",
        "MENTIONS(selling, Subject)",
        "MENTIONS(listening, Subject, Description) AND NOT MENTIONS(selling, Subject, Description)",
        "MENTIONS('check in', Description)",
        "IS_ONLY(generic, Subject)",
        "MENTIONS(generic, Subject, Description)",
    ]


def test_every_word_condition_decides_each_text_as_duckdb_does(spark: SparkSession) -> None:
    symbols = {name: Symbol(typ, sql.col(name)) for name, typ in activity_fields().items()}
    con = duckdb.connect()
    con.execute('CREATE TABLE a (i INTEGER, "Subject" VARCHAR, "Description" VARCHAR)')
    con.executemany("INSERT INTO a VALUES (?, ?, ?)", [(i, s, d) for i, (s, d) in enumerate(ROWS)])
    frame = spark.createDataFrame(
        [(i, s, d) for i, (s, d) in enumerate(ROWS)], "i INT, Subject STRING, Description STRING"
    )
    frame.createOrReplaceTempView("a")
    for text in _conditions():
        tree = compile_expr(text, symbols, word_lists=LISTS).expr
        duck = con.execute(f"SELECT i, {sql.render(tree)} FROM a ORDER BY i").fetchall()
        rendered = dialect.render(tree)
        on_spark = [tuple(r) for r in spark.sql(f"SELECT i, {rendered} FROM a ORDER BY i").collect()]
        assert on_spark == duck, text
        assert any(v for _, v in duck) and not all(v for _, v in duck), text  # the rows tell true from false
