"""The engine on Apache Spark: the same statement trees as `engine.compute`, rendered by `engine.dialect`.

The backend's relations (`crm_contact`, `crm_activity`) are Spark temp views. Each engine statement that makes a
relation runs as a query with its parameters bound, and the result is registered as a temp view under the
relation's name, materialised once (`localCheckpoint`): later passes read it several times, and a cut lineage keeps
the plans of the history replay small.

The timeline (connector.engine.timeline) and the placement run as they are; `a.* EXCLUDE (...)` is spelled out
from the view's columns (Spark has no EXCLUDE).

pyspark is an optional extra (`pip install -e '.[spark]'`) and needs Java 17; without them `session` raises
EngineUnavailable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from connector import sql
from connector.config import EngineSection, FieldsSection, physical_memory
from connector.engine import classify, dialect, evaluate, features, plan, timeline
from connector.engine.relations import PLACE, feature_col
from connector.errors import EngineUnavailable
from connector.ruleset.compiler import RuleSet
from connector.ruleset.expr import Type

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Spark's default of 200 is for clusters: a local run of a small org drowns in tasks. Adaptive execution (on by
# default) merges the partitions of a small org; a million contacts fill 16 (bench/README.md).
LOCAL_SHUFFLE_PARTITIONS = 16
LOCAL_DRIVER_MEMORY_GIB = (2, 8)  # a quarter of this machine's memory, within these bounds; Spark's own 1g runs
# out of heap at 100,000 contacts (the since-date replay evaluates each contact on up to 16 past days)


def local_driver_memory() -> str:
    """The driver's heap for a local master, which runs the whole job: a quarter of this machine's memory, at
    least 2g and at most 8g (`[engine] spark_conf` "spark.driver.memory" says otherwise)."""
    low, high = LOCAL_DRIVER_MEMORY_GIB
    ram = physical_memory()
    gib = low if ram is None else max(low, min(high, ram // 4 // 1024**3))
    return f"{gib}g"


def session(engine: EngineSection) -> SparkSession:
    """A SparkSession as `[engine]` says (reused when one is already running in this process, and as spark-submit
    says when it launched this process)."""
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 - optional extra, imported only when chosen
    except ImportError as e:
        raise EngineUnavailable("[engine] kind = \"spark\" needs pyspark: pip install -e '.[spark]'") from e
    builder: Any = SparkSession.builder
    if not submitted():
        builder = builder.master(engine.master).appName(engine.app_name)
    for key, value in settings(engine).items():
        builder = builder.config(key, value)
    ours = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        spark: SparkSession = builder.getOrCreate()
    except Exception as e:  # py4j and pyspark raise several kinds when Java is missing or cannot start
        causes = [line.strip()[10:] for line in str(e).splitlines() if line.strip().startswith("Caused by: ")]
        first = (causes[-1] if causes else str(e).strip().split("\n", 1)[0])[:400]
        hint = (
            "it needs Java 17 (java -version)"
            if engine.master.startswith("local") or submitted()
            else f"check that [engine] master = {engine.master!r} is reachable from here (Spark's own log above "
            "names the cause), and that Java 17 is installed"
        )
        raise EngineUnavailable(f"Spark could not start ({type(e).__name__}: {first}); {hint}") from e
    if ours is not None:
        # The SparkContext installs its own Ctrl-C handler (cancel every job, then KeyboardInterrupt), which the
        # JVM, stopped by the same keystroke, cannot answer: a crash. The CLI's handler records the stop instead.
        signal.signal(signal.SIGINT, ours)
    return spark


def settings(engine: EngineSection) -> dict[str, str]:
    """The session's settings: defaults for where it runs, then `[engine] spark_conf`, then what the results
    depend on (connector.config_spark refuses those in spark_conf)."""
    out = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",  # a sync reports its own progress; no stage bars on stderr
        # Constraint propagation infers filters from every predicate and alias of a plan: on the classify
        # statement (a test per kind, each over several aliased fields) the inference, run again when each result
        # is checkpointed, took 24 of 25 s on a 300-contact org. It only adds filters, so results are the same.
        "spark.sql.constraintPropagation.enabled": "false",
    }
    if engine.master.startswith("local") and not submitted():
        out["spark.sql.shuffle.partitions"] = str(LOCAL_SHUFFLE_PARTITIONS)
        out["spark.driver.memory"] = local_driver_memory()
    out.update(engine.spark_conf)
    out.update(
        {
            "spark.sql.session.timeZone": "UTC",  # dates never move with the machine's zone
            "spark.sql.ansi.enabled": "true",  # errors rather than silent NULLs, as DuckDB; 4.0's default
            # Spark replaces ${...} in statement text, string literals included, with settings and environment
            # variables; rule text reaches statements as literals (the dialect splits them besides).
            "spark.sql.variable.substitute": "false",
        }
    )
    return out


def submitted() -> bool:
    """Launched by `spark-submit` (the JVM started first and handed this process its port): then spark-submit's
    --master and --name say where the job runs, not `[engine]`."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def date_columns(rules: RuleSet) -> frozenset[str]:
    """The rule namespace's date columns, so a date minus a date counts days on Spark too."""
    return frozenset(feature_col(n) for n, f in rules.features.items() if f.type == Type.DATE)


# The placement's texts (the reason and next step of every rung, the cited activities) make one Java method far
# beyond the JVM's 64 KB when Spark generates the code of the whole stage: the compiler fails, Spark logs an ERROR
# with a stack trace of hundreds of lines on every sync's stderr, and runs the stage interpreted. It is run
# interpreted from the start (the same rows; no failed compilation to wait for).
_TOO_BIG_TO_COMPILE = frozenset({PLACE.name})
_WHOLE_STAGE = "spark.sql.codegen.wholeStage"


class SparkEngine:
    """Runs engine statements on one SparkSession."""

    def __init__(self, spark: SparkSession, rules: RuleSet) -> None:
        self.spark = spark
        self.rules = rules
        self.dates = date_columns(rules)

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(f"`{name}`").columns)

    def register(self, name: str, frame: DataFrame) -> None:
        with self._interpreted(name in _TOO_BIG_TO_COMPILE):
            frame.localCheckpoint(eager=True).createOrReplaceTempView(name)

    @contextlib.contextmanager
    def _interpreted(self, on: bool) -> Iterator[None]:
        """Whole-stage code generation off while the statement runs: see `_TOO_BIG_TO_COMPILE`."""
        if not on:
            yield
            return
        conf = self.spark.conf
        before = conf.get(_WHOLE_STAGE, None)
        conf.set(_WHOLE_STAGE, "false")
        try:
            yield
        finally:
            if before is None:
                conf.unset(_WHOLE_STAGE)
            else:
                conf.set(_WHOLE_STAGE, before)

    def run(self, tree: exp.Expr, params: Mapping[str, object] | None = None) -> DataFrame:
        st = dialect.statement(self._expand_excludes(tree), self.dates)
        bound = {k: v for k, v in (params or {}).items() if k in st.params}
        missing = st.params - set(bound)
        if missing:
            raise ValueError(f"unbound SQL parameters: {', '.join(sorted(missing))}")
        frame = self.spark.sql(st.text, args=bound) if bound else self.spark.sql(st.text)
        if st.target is not None:
            self.register(st.target, frame)
        return frame

    def compute(self, as_of: dt.date, fields: FieldsSection | None = None) -> None:
        """Place every contact into `tl_place` and the changes into `tl_plan`, as `engine.compute` and
        `plan.build` do on DuckDB."""
        rules = self.rules
        params = {"as_of": as_of}
        have = frozenset(self.columns("crm_activity"))
        self.run(classify.statement(rules, have=have), params)
        answered = features.answered_tables(rules)
        for stmt in [
            *features.statements(rules),
            *timeline.statements(rules, answered=answered),
            evaluate.statement(rules),
        ]:
            self.run(stmt, params)
        self.run(plan.statement(fields))

    def _expand_excludes(self, tree: exp.Expr) -> exp.Expr:
        """`a.* EXCLUDE (x, y)` as the list of a's other columns, read from the view `a` stands for."""
        stars = [c for c in tree.find_all(exp.Column) if isinstance(c.this, exp.Star) and c.this.args.get("except_")]
        if not stars:
            return tree
        aliases = {t.alias_or_name: t.name for t in tree.find_all(exp.Table)}
        tree = tree.copy()

        def expand(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and isinstance(node.this, exp.Star) and node.this.args.get("except_"):
                alias = node.table
                dropped = {e.name.lower() for e in node.this.args["except_"]}
                return exp.Tuple(
                    expressions=[sql.col(n, alias) for n in self.columns(aliases[alias]) if n.lower() not in dropped]
                )
            return node

        tree = tree.transform(expand, copy=False)
        for select in tree.find_all(exp.Select):  # the Tuple stand-ins spread into the select list
            spread: list[exp.Expr] = []
            for e in select.expressions:
                spread.extend(e.expressions if isinstance(e, exp.Tuple) else [e])
            select.set("expressions", spread)
        return tree
