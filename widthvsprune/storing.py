"""Where results live, and writing them so that they are complete or absent.

Layout of a study's results folder::

    <out>/<study>/
        study.json                      the study that ran last
        runs.csv, comparison.csv, ...   derived tables, regenerated at will
        runs/<run-key>/search/          the narrow arm's KerasTuner project
        runs/<run-key>/seed-<k>/
            config.json                 the full resolved run configuration
            history.csv                 one row per epoch
            weights.npz                 the trained (stripped) weights
            record.json                 written last: the "done" marker

Every path is made by one function here; nothing else assembles paths.
Every file is written to a temporary name, flushed to disk, then renamed, so
a kill at any moment leaves either the old state or the new one.
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


def study_dir(out, study_name):
    return pathlib.Path(out) / study_name


def study_json(root):
    return pathlib.Path(root) / "study.json"


def runs_dir(root):
    return pathlib.Path(root) / "runs"


def run_dir(root, key):
    return runs_dir(root) / key


def seed_dir(root, key, seed):
    return run_dir(root, key) / f"seed-{int(seed)}"


def search_dir(root, key):
    return run_dir(root, key) / "search"


def config_json(folder):
    return pathlib.Path(folder) / "config.json"


def record_json(folder):
    return pathlib.Path(folder) / "record.json"


def history_csv(folder):
    return pathlib.Path(folder) / "history.csv"


def weights_npz(folder):
    return pathlib.Path(folder) / "weights.npz"


def lock_file(folder):
    return pathlib.Path(folder) / ".lock"


def tensorboard_dir(folder):
    return pathlib.Path(folder) / "tensorboard"


def table(root, name):
    """A derived table or figure of the study: ``runs.csv``, ``frontier.png`` ..."""
    return pathlib.Path(root) / name


# --------------------------------------------------------------------------
# Run keys.


def canonical(config):
    """The canonical text of a JSON-ready config: sorted keys, no spaces."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def run_key(config, prefix=""):
    """A stable key for a run configuration (without its seed).

    The key is readable where it helps (``prefix``) and otherwise a hash of
    the canonical configuration, so the same configuration always lands in the
    same folder and a different one never overwrites it.
    """
    digest = hashlib.sha256(canonical(config).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}" if prefix else digest


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


def write_bytes(path, data):
    """Writes ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def write_json(path, data):
    return write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_csv(path, frame):
    """Writes a pandas DataFrame atomically."""
    return write_bytes(path, frame.to_csv(index=False).encode())


def write_weights(path, arrays):
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return write_bytes(path, buffer.getvalue())


def read_weights(path):
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]


def read_record(folder):
    """The run's record, or ``None`` if it has none (or an unreadable one)."""
    path = record_json(folder)
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None


def is_done(folder):
    record = read_record(folder)
    return record is not None and record.get("status") == "ok"


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
