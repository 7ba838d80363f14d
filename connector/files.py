"""Read a small text file a user points us at (a rule file, the config), refusing whatever is not one; check a
folder or file a command is about to write, before the work that would fill it (creating nothing); and check that
a path the config names for a database file can be one.

A folder, a device such as /dev/zero, a FIFO with no writer, a symbolic link that leads back to itself, a file
larger than the limit, bytes that are not UTF-8: each is an `Unreadable` with a plain-words reason, which the
caller turns into its own error (a RuleError, a ConfigError). Never a hang, never more than limit + 1 bytes read.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

MIB = 1024 * 1024


class Unreadable(Exception):  # always rewrapped by the caller as its own error
    """Why a file cannot be read, and where in it when that is known (1-based line and column)."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


def read_text(path: Path, limit: int, *, what: str) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes."""
    data = read_bounded(path, limit, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8")
        line, col = line_col(good, len(good))
        raise Unreadable(
            f"not UTF-8 text: the byte 0x{data[exc.start]:02X} here cannot be read; save the {what} as UTF-8", line, col
        ) from None


def read_bounded(path: Path, limit: int, *, what: str) -> bytes:
    """At most `limit` bytes of a regular file.

    The file is opened without blocking (a FIFO with no writer would wait forever) and checked with fstat on the
    open descriptor, so what is read is what was checked; at most limit + 1 bytes are read, so even a file that
    grows while we read cannot make us read more.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise Unreadable(f"{what} not found: check the path") from None
    except IsADirectoryError:
        raise Unreadable(f"this is a folder, not a {what}: name the file itself") from None
    except PermissionError:
        raise Unreadable(f"cannot read the {what}: permission denied") from None
    except OSError as exc:
        reason = (
            "it is a symbolic link that leads back to itself" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        )
        raise Unreadable(f"cannot open the {what}: {reason}") from None
    chunks: list[bytes] = []
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise Unreadable(f"this is a folder, not a {what}: name the file itself")
        if not stat.S_ISREG(mode):
            raise Unreadable(f"this is not a regular file (a device, pipe or socket), so it cannot be a {what}")
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise Unreadable(f"cannot read the {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise Unreadable(f"the {what} is larger than {size(limit)}: split it, or remove what it does not need")
    return data


def size(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit:,} bytes"


def line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of text[index]."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _nearest_existing(path: Path) -> Path:
    """`path` itself, or the closest of its parents that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _probe(folder: Path) -> str | None:
    """A file made and removed in `folder`: catches a read-only mount that permission bits (and root) do not show,
    and pseudo file systems (/proc) that take no new file."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"cannot write there ({e.strerror or e})"
    return None


def unwritable_folder(path: Path) -> str | None:
    """Why `path` cannot take files, in plain words, or None. Nothing is created: a folder that does not exist yet
    is judged by the closest existing parent, which must be a folder that takes files (the writer makes the rest
    when it writes), so a refused command leaves no folder behind."""
    if path.exists() and not path.is_dir():
        return f"{path} is {_what(path)}, not a folder"
    base = _nearest_existing(path)
    if not base.is_dir():
        return f"{base} is {_what(base)}, not a folder"
    return _probe(base)


def unwritable_file(path: Path) -> str | None:
    """Why a file cannot be written at `path` (created, or replaced when it is a regular file), or None. Nothing is
    created, as for `unwritable_folder`."""
    if path.is_dir():
        return f"{path} is a folder; name the file to write"
    if path.exists():
        if not path.is_file():
            return f"{path} is {_what(path)}, not a regular file"
        if not os.access(path, os.W_OK):
            return f"cannot write {path}: permission denied (or a read-only file system)"
        return None
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        return f"{base} is {_what(base)}, not a folder"
    return _probe(base)


def _what(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError:
        return "something that cannot be read"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


_DUCKDB_MAGIC = b"DUCK"  # a DuckDB database file's format marker: bytes 8 to 12 of its first block


def database_file_problem(path: Path, *, content: bool = True) -> str | None:
    """Why `path` cannot be a DuckDB database file we open or create, in plain words, or None: a folder, a device,
    a parent that is a file, or (with `content`) a file that holds something else. An empty or absent file is fine
    (created)."""
    if path.is_dir():
        return f"{path} is a folder; it must name the database file itself (for example {path / 'data.duckdb'})"
    if path.exists():
        if not path.is_file():
            return f"{path} is {_what(path)}, not a database file"
        if not content:
            return None
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as e:
            return f"cannot read {path} ({e.strerror or e})"
        if content and head and head[8:12] != _DUCKDB_MAGIC:
            return f"{path} is a file that is not a DuckDB database (it holds something else); name another file"
        return None
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        return f"{base} is {_what(base)}, not a folder, so {path} cannot be made there"
    return None
