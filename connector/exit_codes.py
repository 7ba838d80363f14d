"""Named exit codes: schedulers and the README point here, so the numbers never move."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PARTIAL = 1  # the run finished, but some records failed to write; they are retried next run
    USAGE = 2  # wrong command-line use (click's own code)
    CONFIG = 3  # the configuration file is missing, unreadable or invalid
    RULES = 4  # a rule file failed validation; nothing was written
    DATA = 5  # input data (an import folder, a contact Id) could not be used
    CRM_DOWN = 6  # sign-in or connection to the CRM failed
    BUDGET = 7  # the API budget for this run, or the org's daily allowance, was reached
    LOCKED = 8  # another run holds the lock, or the state store is busy
    DEADLINE = 9  # the run reached max_run_seconds and stopped cleanly between batches; what it wrote is kept
    INTERNAL = 70  # a bug: the traceback is on stderr (in the log)
    INTERRUPTED = 130  # stopped by Ctrl-C (SIGINT, 128 + 2); recorded as `interrupted`, what it wrote is kept
    TERMINATED = 143  # stopped by SIGTERM (128 + 15: systemd stop, Kubernetes, kill); recorded as `interrupted`
