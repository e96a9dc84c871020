"""The state directory is trusted only when nobody else can write it.

cli-ai runs as root and replays what it finds here (`cli-ai rollback` writes
the journal's values to the kernel and moves files back), so, as ssh does for
~/.ssh, it refuses a state directory or file that another user could have
planted or changed: each must be owned by the user running cli-ai, not
writable by group or others, and not a symlink; the directories above it must
not let anyone else replace it. Files are opened with O_NOFOLLOW (a planted
symlink is never followed) and created with O_EXCL; a FIFO or a device in
place of a file is refused without blocking on it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from cli_ai.errors import StateError

#: Journals are a few KB; anything bigger is not one of ours.
MAX_STATE_FILE_BYTES = 1024 * 1024


def _me() -> int:
    return os.geteuid()


def _mode(st: os.stat_result) -> str:
    return oct(stat.S_IMODE(st.st_mode))


def dir_problem(path: Path, st: os.stat_result) -> str | None:
    """Why the state directory `path` (its lstat `st`) is not to be trusted, or None."""
    if stat.S_ISLNK(st.st_mode):
        return (f"state directory {path} is a symlink, which cli-ai never follows; "
                f"replace it with a directory of your own (rm {path} && mkdir -m 700 {path})")
    if not stat.S_ISDIR(st.st_mode):
        return (f"state directory {path} is not a directory; remove it (rm {path}) "
                "or point CLI_AI_STATE_DIR at a directory")
    if st.st_uid != _me():
        return (f"state directory {path} is owned by uid {st.st_uid}, not by you (uid {_me()}); "
                f"check what it holds, then chown {_me()} {path} (or remove it)")
    if st.st_mode & 0o022:
        return (f"state directory {path} is writable by group or others (mode {_mode(st)}); "
                f"check what it holds, then chmod 700 {path}")
    return None


def ancestor_problem(path: Path) -> str | None:
    """Why a directory above the state directory lets another user replace
    it (writable by others without the sticky bit, or owned by someone else)."""
    for parent in Path(os.path.realpath(path.parent)).joinpath("x").parents:
        try:
            st = os.stat(parent)
        except OSError:
            continue
        if st.st_uid not in (0, _me()):
            return (f"{parent}, above the state directory {path}, is owned by uid {st.st_uid}, who could replace "
                    f"it; chown {_me()} {parent} or set CLI_AI_STATE_DIR to a directory of your own")
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return (f"{parent}, above the state directory {path}, is writable by group or others (mode "
                    f"{_mode(st)}), who could replace it; chmod go-w {parent} or set CLI_AI_STATE_DIR elsewhere")
    return None


def _mkdirs(path: Path) -> None:
    """Create `path` and any missing parent 0700 (as the XDG base directory
    spec asks), whatever the umask: a parent made group-writable by a umask
    of 002 would be refused by `ancestor_problem` next."""
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        os.mkdir(d, 0o700)
    if not missing:
        raise FileExistsError(path)


def check_state_dir(path: Path, *, create: bool) -> bool:
    """Refuse (StateError) an untrusted state directory; create it 0700 when
    `create`. Returns whether it exists."""
    if create:
        try:
            _mkdirs(path)
        except FileExistsError:
            pass
        except NotADirectoryError:
            raise StateError(f"state directory {path}: a parent is not a directory; "
                             "point CLI_AI_STATE_DIR at a directory") from None
        except OSError as exc:
            raise StateError(f"state directory {path}: cannot create it ({exc.strerror}); "
                             "point CLI_AI_STATE_DIR at a directory you own") from None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise StateError(f"state directory {path}: a parent is not a directory; "
                         "point CLI_AI_STATE_DIR at a directory") from None
    problem = dir_problem(path, st) or ancestor_problem(path)
    if problem:
        raise StateError(problem)
    return True


def file_problem(path: Path, st: os.stat_result, what: str = "state file") -> str | None:
    """Why a file of the state directory (fstat `st` of the opened file) is not to be trusted."""
    if stat.S_ISDIR(st.st_mode):
        return f"{what} {path} is a directory, not a file; remove it (rm -r {path})"
    if not stat.S_ISREG(st.st_mode):
        return f"{what} {path} is not a regular file (a FIFO, socket or device); remove it (rm {path})"
    if st.st_uid != _me():
        return (f"{what} {path} is owned by uid {st.st_uid}, not by you (uid {_me()}); "
                f"check it, then chown {_me()} {path} (or remove it)")
    if st.st_mode & 0o022:
        return f"{what} {path} is writable by group or others (mode {_mode(st)}); check it, then chmod 600 {path}"
    if st.st_nlink != 1:
        return f"{what} {path} has {st.st_nlink} hard links, so it is also another file; remove it (rm {path})"
    return None


def _open_error(path: Path, exc: OSError, what: str) -> StateError:
    if exc.errno == errno.ELOOP:
        return StateError(f"{what} {path} is a symlink, which cli-ai never follows; remove it (rm {path})")
    if exc.errno == errno.ENXIO:
        return StateError(f"{what} {path} is a FIFO or socket with nobody at the other end; remove it (rm {path})")
    return StateError(f"{what} {path}: cannot open it ({exc.strerror}); check it or remove it")


def open_checked(path: Path, flags: int, what: str) -> int | None:
    """Open an existing state file without following a symlink or blocking on
    a FIFO, and check it (`file_problem`); None when it does not exist."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise StateError(f"{what} {path} is a directory, not a file; remove it (rm -r {path})") from None
        raise _open_error(path, exc, what) from None
    try:
        problem = file_problem(path, os.fstat(fd), what)
        if problem:
            raise StateError(problem)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_state_file(path: Path, what: str = "state file") -> str | None:
    """The text of a trusted state file (at most MAX_STATE_FILE_BYTES), None when absent."""
    fd = open_checked(path, os.O_RDONLY, what)
    if fd is None:
        return None
    try:
        if os.fstat(fd).st_size > MAX_STATE_FILE_BYTES:
            raise StateError(f"{what} {path} is larger than {MAX_STATE_FILE_BYTES // 1024} KB, so it is not one "
                             f"cli-ai wrote; inspect it and remove it (rm {path})")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > MAX_STATE_FILE_BYTES:
                raise StateError(f"{what} {path} is larger than {MAX_STATE_FILE_BYTES // 1024} KB; remove it")
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise StateError(f"{what} {path} is not UTF-8 text, so it is not one cli-ai wrote; remove it") from None


def open_or_create(path: Path, what: str = "state file") -> int:
    """A read-write fd of a state file: created with O_EXCL (0600) when it is
    missing, else opened without following a symlink and checked."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _open_error(path, exc, what) from None
    fd = open_checked(path, os.O_RDWR, what)
    if fd is None:  # removed between the two opens: try once more, exclusively
        return open_or_create(path, what)
    return fd


__all__ = ["MAX_STATE_FILE_BYTES", "check_state_dir", "read_state_file", "open_or_create", "open_checked",
           "file_problem"]
