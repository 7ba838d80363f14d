"""Mutated rule files through `rules check`, `sync --dry-run` and `simulate --weeks 2` (issue 9): exit codes only
0, 1 or 4, no traceback, nothing that passes the check and then fails, no write to the CRM, each command bounded.

A few dozen seeded mutants here; `bench/mutants.py` runs a thousand the same way (figures in bench/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.mutator import DemoOrg, mutants

COUNT = int(os.environ.get("TRUST_LADDER_MUTANTS", "60"))
SEED = int(os.environ.get("TRUST_LADDER_MUTANT_SEED", "9"))
BATCHES = 4  # the mutants in runs of COUNT / BATCHES, each a test of its own: pytest -n runs them side by side


@pytest.fixture(scope="module")
def demo_org(tmp_path_factory: pytest.TempPathFactory) -> DemoOrg:
    return DemoOrg(tmp_path_factory.mktemp("mutants"), contacts=40)


@pytest.mark.parametrize("batch", range(BATCHES))
def test_mutated_rule_files_are_refused_or_run_and_never_crash_or_write(demo_org: DemoOrg, batch: int) -> None:
    problems: list[str] = []
    accepted = 0
    dealt = [m for i, m in enumerate(mutants(COUNT, SEED)) if i * BATCHES // COUNT == batch]
    for mutant in dealt:
        verdict = demo_org.run(mutant, timeout=60)
        accepted += verdict.outcomes[0].exit_code == 0
        problems += [f"mutant {mutant.seed} {mutant.steps}: {p}" for p in verdict.problems]
        for o in verdict.outcomes:
            assert o.seconds < 60, (mutant.seed, o.command, o.seconds)
    assert problems == []
    assert accepted >= max(1, len(dealt) // 10), (
        f"only {accepted} of {len(dealt)} mutants passed rules check: the engine is barely run"
    )


def test_the_mutator_is_seeded(tmp_path: Path) -> None:
    first = [m.text for m in mutants(5, 3)]
    assert first == [m.text for m in mutants(5, 3)]
    assert first != [m.text for m in mutants(5, 4)]
    assert len(set(first)) == 5
