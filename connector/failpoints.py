"""Named points where a test can kill this process outright (SIGKILL: no cleanup, no flush, like `kill -9`).

Crash-safety is proven by killing a real sync at these points and checking that the next run converges on
what a clean run produces. Off unless TRUST_LADDER_FAILPOINT names a point; costs one dict lookup otherwise.
"""

from __future__ import annotations

import os
import signal

ENV = "TRUST_LADDER_FAILPOINT"
POINTS = ("after_pull", "after_compute", "mid_write", "after_write")


def hit(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
