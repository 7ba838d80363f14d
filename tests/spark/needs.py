"""What every Spark test needs, said once: the spark extra and Java. Without them a Spark test is skipped, with the
reason, rather than failing on the machine's set-up."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

SPARK = [
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None,
        reason="pyspark is not installed: the README's test command provides the spark extra",
    ),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 and there is no `java` on PATH"),
]
