"""Files cli-ai reads from a person and files it writes for the machine.

`read_untrusted_text` is the one way to read a user-given file (a spec, a
result, a journal, a trace): it opens without blocking, refuses what is not a
regular file (a FIFO would hang, /dev/zero would fill memory, a directory is
a mistake) and anything over a size limit, and never reads more than the
limit even when the file grows while it is read. Every refusal is a
BadInputError (exit 2) with one line naming the file and the fix.

`write_atomic` and `backup_file` are how cli-ai replaces files in shared
directories such as /etc/sysctl.d: the temporary file comes from mkstemp in
the target directory (O_EXCL, so a planted symlink or file is never followed
or reused) and backups get names nothing else has, so an earlier backup is
never overwritten.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from cli_ai.errors import BadInputError

#: The most cli-ai reads of a user-given file: a spec or a result is a few KB.
MAX_INPUT_BYTES = 10 * 1024 * 1024


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_untrusted_text(path: str | os.PathLike, what: str = "file", limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of the regular file `path`, at most `limit` bytes.

    `what` names the file in messages ("tuning spec", "result file"). Raises
    BadInputError for a missing, unreadable, non-regular, oversized or
    non-UTF-8 file, before reading more than `limit` + 1 bytes of it."""
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not hang; the fstat
        # below refuses it before any read.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInputError(f"{p}: no such file; give the path of a {what}") from None
    except IsADirectoryError:
        raise BadInputError(f"{p}: is a directory; give the path of a {what}") from None
    except OSError as exc:
        raise BadInputError(f"{p}: cannot be read ({exc.strerror}); give the path of a readable {what}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(f"{p}: is {_kind(st.st_mode)}, not a regular file; give the path of a {what}")
        if st.st_size > limit:
            raise BadInputError(f"{p}: is {st.st_size} bytes, over the {limit} byte limit for a {what}; "
                                f"give the path of a {what}")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while we read it
            raise BadInputError(f"{p}: is over the {limit} byte limit for a {what}; give the path of a {what}")
    except OSError as exc:
        raise BadInputError(f"{p}: cannot be read ({exc.strerror}); give the path of a readable {what}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise BadInputError(f"{p}: is not UTF-8 text; a {what} is a JSON file") from None


def fsync_dir(directory: str | os.PathLike) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike, text: str, mode: int = 0o644, *, like: str | os.PathLike | None = None) -> None:
    """Replace `path` with `text` atomically: a mkstemp file in the same
    directory (created O_EXCL, so nothing planted there is followed), fsynced,
    then renamed over `path` (which replaces a symlink, never its target).
    With `like` (an existing file: the one being replaced), the new file gets
    its mode and, as root, its owner."""
    p = Path(path)
    ref = os.stat(like) if like is not None and os.path.exists(like) else None
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        try:
            os.fchmod(fd, (ref.st_mode & 0o7777) if ref is not None else mode)
            if ref is not None and os.geteuid() == 0:
                os.fchown(fd, ref.st_uid, ref.st_gid)
            data = text.encode("utf-8")
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(p.parent)


def backup_file(path: str | os.PathLike) -> str | None:
    """Keep the current `path` under a new name `<name>.bak-<UTC stamp>[-n]`
    next to it, or None when there is no file. The backup is a hard link made
    with link(2), which fails rather than overwrite: two backups in the same
    second get different names, and the content is exactly what was there
    (a symlink stays a symlink; its target is never read)."""
    p = Path(path)
    if not os.path.lexists(p):
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        backup = p.with_name(f"{p.name}.bak-{stamp}" + (f"-{n}" if n else ""))
        try:
            try:
                os.link(p, backup, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                _copy_exclusive(p, backup)  # a filesystem without hard links
        except FileExistsError:
            continue
        except FileNotFoundError:  # removed meanwhile: nothing to keep
            return None
        fsync_dir(p.parent)
        return str(backup)
    raise FileExistsError(f"{p}: 1000 backups from this second already exist")


def _copy_exclusive(src: Path, dst: Path) -> None:
    """Copy `src` to a new `dst` (O_EXCL: never over an existing file); a
    symlink is copied as a symlink, its target never read."""
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd_in)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{src} is not a regular file")
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, stat.S_IMODE(st.st_mode))
        try:
            while chunk := os.read(fd_in, 1 << 20):
                while chunk:
                    chunk = chunk[os.write(fd_out, chunk):]
            os.fsync(fd_out)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


__all__ = ["MAX_INPUT_BYTES", "backup_file", "fsync_dir", "read_untrusted_text", "write_atomic"]
