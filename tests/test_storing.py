"""The store: atomic writes, a full disk, locks."""

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import tiny_study

from widthvsprune import store
from widthvsprune.store import DiskFullError


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "a" / "record.json"
    store.write_json(path, {"x": 1})
    store.write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_written_files_get_the_mode_of_any_new_file_under_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = store.write_json(tmp_path / "grouped" / "record.json", {"x": 1})
        mode = store.files._default_mode()
    finally:
        os.umask(old)
    assert mode == 0o640 and (path.stat().st_mode & 0o777) == store.FILE_MODE == 0o666 & ~old


def test_a_lock_is_held_by_one_process_at_a_time(tmp_path):
    first, second = store.Lock(tmp_path), store.Lock(tmp_path)
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)
    first.release()
    assert second.acquire(blocking=False)
    second.release()


def test_taking_a_lock_removes_what_a_killed_writer_left_and_nothing_else(tmp_path):
    search = tmp_path / "runs" / "search-key" / "search"
    store.write_json(search / "oracle.json", {"trials": 3})
    left = search / ".oracle.json.abc123.tmp"  # a writer killed between creating and renaming its file
    left.write_text('{"tri')
    others = tmp_path / "runs" / "search-key" / "seed-0"  # a folder another process may lock and write
    store.Lock(others).acquire(blocking=False)
    theirs = others / ".record.json.def456.tmp"
    theirs.write_text("{")
    lock = store.Lock(tmp_path / "runs" / "search-key")
    assert lock.acquire(blocking=False)
    lock.release()
    assert not left.exists() and theirs.exists()
    assert json.loads((search / "oracle.json").read_text()) == {"trials": 3}


def test_no_space_raises_a_disk_full_error_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.files.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(DiskFullError, match=r"^out: Expected free space to write results. Received: no space left"):
        store.write_json(tmp_path / "record.json", {"x": 1})
    assert list(tmp_path.iterdir()) == []


CHECK = """
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
bad = []
for path in root.rglob("*.json"):
    try:
        json.loads(path.read_text())
    except ValueError:
        bad.append(str(path))
print(json.dumps({"tmp": [str(p) for p in root.rglob("*.tmp")], "bad": bad,
                  "records": len(list(root.rglob("record.json")))}))
"""


def test_a_full_disk_stops_the_run_with_one_line_and_no_torn_file(tmp_path):
    """A real full file system: a 96 KiB tmpfs mounted in a private mount namespace."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {tmp_path}"],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs in a private namespace is not allowed here")
    out = tmp_path / "out"
    out.mkdir()
    study = tmp_path / "full.py"
    study.write_text("import json\nfrom widthvsprune.study import study_from_dict\n"
                     f"STUDY = study_from_dict(json.loads({json.dumps(json.dumps(tiny_study('full').to_dict()))}))\n")
    (tmp_path / "check.py").write_text(CHECK)
    script = (f"mount -t tmpfs -o size=96k tmpfs {out} && {sys.executable} -m widthvsprune run {study} --out {out} "
              f"--workers 1; echo rc=$?; {sys.executable} {tmp_path / 'check.py'} {out}")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == "rc=1", result.stdout + result.stderr
    check = json.loads(lines[-1])
    assert check["tmp"] == [] and check["bad"] == []
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: out: Expected free space to write results. Received: no space left on the "
                            f"device holding '{out}/full")
    assert error.endswith("free some space and run the same command again to resume")
