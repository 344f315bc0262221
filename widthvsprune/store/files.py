"""Writing results so that they are complete or absent, and reading them back.

Every file is written to a temporary name, flushed to disk, then renamed, so
a kill at any moment leaves either the old state or the new one; the next
process to lock the folder removes the temporary file such a kill leaves
(:mod:`.locks`). A full disk raises :class:`DiskFullError`, naming the
folder, after removing the temporary file.
"""

import contextlib
import errno
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


def no_space(error, path):
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
            raise no_space(error, path) from None
        raise
    except BaseException:
        if tmp is not None:
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
