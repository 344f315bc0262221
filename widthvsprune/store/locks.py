"""Locks: one OS file lock per run or search folder, held while it trains.

The kernel drops a lock when its process dies, however it dies, so a lock
left by a killed process never blocks anyone; its new holder removes the
temporary files the dead writer left.
"""

import contextlib
import errno
import fcntl
import os
import pathlib

from widthvsprune.store.files import no_space
from widthvsprune.store.paths import lock_file


def _leftovers(folder):
    """Temporary files under ``folder`` that ``write_bytes`` left, outside subfolders with locks of their own."""
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            if not os.path.exists(lock_file(entry.path)):
                yield from _leftovers(entry.path)
        elif entry.name.startswith(".") and entry.name.endswith(".tmp"):
            yield pathlib.Path(entry.path)


def remove_leftovers(folder):
    """Removes the temporary files a killed writer left under a folder this process has just locked.

    Only the holder of a folder's lock writes there, so every temporary file
    found once the lock is taken belongs to a writer that died mid-write.
    """
    for path in list(_leftovers(folder)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class Lock:
    """An exclusive OS file lock (``flock``) on a run folder.

    The kernel drops the lock when its process dies, however it dies, so a
    lock left by a killed process never blocks anyone.
    """

    def __init__(self, folder):
        self.path = lock_file(folder)
        self._fd = None

    def acquire(self, blocking=True):
        """Takes the lock; returns False if ``blocking`` is False and another process holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise no_space(error, self.path) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        remove_leftovers(self.path.parent)
        return True

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
