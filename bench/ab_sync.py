"""One `trust-ladder sync` of a bench org by the code of another checkout, for an A/B run in turn with
another checkout's (`/usr/bin/time -v` around each, see bench/README.md).

    python bench/ab_sync.py --tree /work/wt-before --org bench/out/org-100000 --fresh   # a first sync
    python bench/ab_sync.py --tree /work/wt-before --org bench/out/org-100000           # a rerun of the same

The org is generated once by `bench/run_local.py` (its `generated.duckdb`). Each checkout gets its own copy of it
(`<org>/ab-<checkout name>/`), read with that checkout's own default rules (`rules/ladder.yaml`), so "before" and
"now" place the same contacts from the same activities, each by its own rules. `--fresh` starts again from the
generated org (trust fields empty, no state store): a first sync. Without it the sync finds what the last one left:
a no-change rerun. The process replaces itself with the sync (exec), so the CPU a timer reads is the sync's, plus a
copy of the database file with `--fresh` (about 0.1 CPU-s for 100,000 contacts, the same on both sides).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, required=True, help="the checkout whose code and rules run")
    parser.add_argument("--org", type=Path, required=True, help="a folder of bench/run_local.py (generated.duckdb)")
    parser.add_argument("--fresh", action="store_true", help="a first sync: from the generated org, no state")
    parser.add_argument("--as-of", default="2026-11-01")
    args = parser.parse_args()
    tree = args.tree.resolve()
    folder = args.org.resolve() / f"ab-{tree.name}"
    folder.mkdir(exist_ok=True)
    config = folder / "trust-ladder.toml"
    rules = tree / "rules" / "ladder.yaml"
    config.write_text(f'[local]\ndatabase = "crm.duckdb"\n[state]\npath = "state.duckdb"\n[rules]\npath = "{rules}"\n')
    if args.fresh or not (folder / "crm.duckdb").exists():
        shutil.copy(args.org.resolve() / "generated.duckdb", folder / "crm.duckdb")
        for stale in folder.glob("state.duckdb*"):
            stale.unlink()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, "-m", "connector.entry", "--config", str(config), "sync", "--as-of", args.as_of]
    os.chdir(folder)
    os.execve(sys.executable, argv, env)  # noqa: S606 - the sync replaces this process: a timer reads its CPU alone


if __name__ == "__main__":
    main()
