"""The `trust-ladder` console script. It imports nothing heavy before it can answer Ctrl-C: the command's modules
(the engine, DuckDB, pydantic, simple-salesforce) take a second or two to import, and a Ctrl-C in that second
printed a Python traceback. Now it prints the same one line as an interrupted run, and exits 130."""

from __future__ import annotations

import sys
from typing import NoReturn

_INTERRUPTED = 130  # connector.exit_codes.ExitCode.INTERRUPTED, not imported: it must work before any import


def interrupted_while_starting() -> NoReturn:
    sys.stderr.write("trust-ladder: interrupted (Ctrl-C) while starting; nothing was done.\n")
    sys.stderr.flush()
    raise SystemExit(_INTERRUPTED)


def run() -> None:
    try:
        from connector.cli import main  # noqa: PLC0415 - imported here, where a Ctrl-C is answered
    except KeyboardInterrupt:
        interrupted_while_starting()
    main()


if __name__ == "__main__":
    run()
