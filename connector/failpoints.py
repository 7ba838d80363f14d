"""Named points where a test can kill this process outright (SIGKILL: no cleanup, no flush, like `kill -9`), or
hold it still (`<point>:pause`) to send it a signal at a known moment (Ctrl-C, SIGTERM).

Crash-safety is proven by killing a real sync at these points and checking that the next run converges on
what a clean run produces. Off unless TRUST_LADDER_FAILPOINT names a point; costs one dict lookup otherwise.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "TRUST_LADDER_FAILPOINT"
POINTS = ("after_pull", "after_compute", "mid_write", "after_write")
PAUSE_S = 60.0  # long enough for a test to signal the paused process; a signal ends the sleep


def hit(name: str) -> None:
    wanted = os.environ.get(ENV)
    if wanted == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif wanted == f"{name}:pause":
        time.sleep(PAUSE_S)
