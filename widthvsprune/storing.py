"""Where results live, and writing them so that they are complete or absent.

Layout of a study's results folder::

    <out>/<study>/
        study.json                      the study the tables describe (see history)
        history/<hash>.json             every study that ran in this folder
        runs.csv, comparison.csv, ...   derived tables, regenerated at will
        runs/<run-key>/search/          a search: its KerasTuner project and result.json
        runs/<run-key>/seed-<k>/
            config.json                 the full resolved run configuration
            history.csv                 one row per epoch
            weights.npz                 the trained (stripped) weights
            predictions.npz             which test examples the model got right
            record.json                 written last: the "done" marker

Every path is made by one function here; nothing else assembles paths.
Every file is written to a temporary name, flushed to disk, then renamed, so
a kill at any moment leaves either the old state or the new one; the next
process to lock the folder removes the temporary file such a kill leaves.
A full disk raises :class:`DiskFullError`, naming the folder, after removing
the temporary file.
"""

import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import pathlib
import tempfile

import numpy as np

from widthvsprune.errors import ResultsError


class DiskFullError(ResultsError):
    """The results folder's file system has no space left."""


def study_dir(out, study_name):
    return pathlib.Path(out) / study_name


def study_json(root):
    return pathlib.Path(root) / "study.json"


def history_json(root, digest):
    return pathlib.Path(root) / "history" / f"{digest}.json"


def runs_dir(root):
    return pathlib.Path(root) / "runs"


def run_dir(root, key):
    return runs_dir(root) / key


def seed_dir(root, key, seed):
    return run_dir(root, key) / f"seed-{int(seed)}"


def search_dir(root, key):
    return run_dir(root, key) / "search"


def search_result_json(root, key):
    return search_dir(root, key) / "result.json"


def config_json(folder):
    return pathlib.Path(folder) / "config.json"


def record_json(folder):
    return pathlib.Path(folder) / "record.json"


def history_csv(folder):
    return pathlib.Path(folder) / "history.csv"


def weights_npz(folder):
    return pathlib.Path(folder) / "weights.npz"


def predictions_npz(folder):
    return pathlib.Path(folder) / "predictions.npz"


def lock_file(folder):
    return pathlib.Path(folder) / ".lock"


def tensorboard_dir(folder):
    return pathlib.Path(folder) / "tensorboard"


def table(root, name):
    """A derived table or figure of the study: ``runs.csv``, ``frontier.png`` ..."""
    return pathlib.Path(root) / name


# --------------------------------------------------------------------------
# Atomic writes.


def _fsync_dir(path):
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _no_space(error, path):
    return DiskFullError(
        f"out: Expected free space to write results. Received: no space left on the device holding "
        f"{str(pathlib.Path(path).parent)!r} (while writing {pathlib.Path(path).name}: {error.strerror}); "
        "free some space and run the same command again to resume"
    )


def _default_mode():
    """The mode ``open()`` gives a new file under this process's umask (``tempfile.mkstemp`` gives 0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_mode()


def write_bytes(path, data):
    """Writes ``data`` to ``path`` atomically (temporary file, fsync, rename).

    Raises:
        DiskFullError: if the device has no space left; no file is left behind.
    """
    path = pathlib.Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
        os.fchmod(fd, FILE_MODE)  # readable like any file the user writes, not private to the user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _no_space(error, path) from None
        raise
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


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


def write_json(path, data):
    return write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(path, frame):
    """Writes a pandas DataFrame atomically."""
    return write_bytes(path, frame.to_csv(index=False).encode())


def _npz_bytes(arrays, named=False):
    buffer = io.BytesIO()
    if named:
        np.savez(buffer, **arrays)
    else:
        np.savez(buffer, *arrays)
    return buffer.getvalue()


def write_weights(path, arrays):
    """Writes a list of arrays; returns the file's SHA-256."""
    data = _npz_bytes(arrays)
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_weights(path):
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def write_arrays(path, arrays):
    """Writes named arrays; returns the file's SHA-256."""
    data = _npz_bytes(arrays, named=True)
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def read_arrays(path):
    with np.load(path) as f:
        return {name: f[name] for name in f.files}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_writable(out):
    """Problems with the results folder, one line each (empty when usable)."""
    out = pathlib.Path(out)
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return [f"out: Expected a folder. Received: out={str(out)!r}, where {str(probe)!r} is a file"]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [f"out: Expected a writable results folder. Received: out={str(out)!r}"]
    return []


# --------------------------------------------------------------------------
# Locks: one per run folder, held while the run trains.


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
                raise _no_space(error, self.path) from None
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
