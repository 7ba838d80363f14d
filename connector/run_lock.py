"""One run at a time: an exclusive `flock` beside the state store, and a probe of it for `status`."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from connector import files
from connector.errors import ConfigError, LockHeld

_PROBE_WAIT_S = 0.5  # a `status` probe of the run lock lasts microseconds


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- one run at a time ------------------------------------------------------------------------------------


@dataclass
class RunLock:
    """An exclusive `flock` on a file beside the state store.

    The kernel drops the lock when its holder dies, however it dies, so a lock left by a dead process is taken
    over safely by the next run; the file's content only names the holder for the log line of a refused run.
    """

    path: Path
    _fd: int | None = None

    def acquire(self, run_id: str, *, what: str = "run") -> None:
        """Take the lock, or raise LockHeld (exit 8) naming the holder. A `status` probe (`held`) holds it for
        microseconds; that is waited out, a run is not."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # the state folder is a file, or cannot be written: the config names it
            why = files.unwritable_folder(self.path.parent) or exc.strerror or str(exc)
            raise ConfigError(
                f"[state] path: cannot make the run lock {self.path} beside the state store: {why}; "
                "name a state file in a folder this user can write"
            ) from None
        deadline = time.monotonic() + _PROBE_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise LockHeld(
                    f"another run holds the lock {self.path}: {holder}; this {what} changes the CRM or "
                    "the state, so it stopped without touching anything (exit 8): run it again when that run has "
                    "finished"
                ) from None
        info = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "run_id": run_id,
                "since": _now().isoformat(timespec="seconds"),
            }
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


def lock_held(path: Path) -> bool:
    """Whether a live process holds the run lock at `path` (a shared probe, released at once)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
