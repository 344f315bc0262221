"""The Ray executor: a local Ray instance (started and stopped by each run), a worker killed mid-pack, no Ray."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from conftest import assert_same_runs, without_imports

from widthvsprune.store import results

pytest.importorskip("ray")

QUICKSTART = pathlib.Path(__file__).resolve().parent.parent / "studies" / "quickstart.py"
# The quickstart, made small enough to run twice in a test: fewer seeds, sizes, epochs and trials.
SMALLER = ["--set", "dataset='digits'", "--set", "seeds=[0,1]", "--set", "sparsities=[0.5,0.9]",
           "--set", "baseline.epochs=3", "--set", "finetune.epochs=2", "--set", "tuning.trials=2"]
PROGRESS = re.compile(r"^\[(?:\d+|\?) left \| [^\]]*\] (?:w\d+ )?(.+?)  ")


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)], capture_output=True, text=True,
                          timeout=900, **kwargs)


def trained(stdout):
    return [m.group(1) for m in map(PROGRESS.match, stdout.splitlines()) if m]


def test_the_quickstart_on_ray_has_the_same_runs_bit_for_bit_as_on_this_machine(tmp_path):
    local = cli("run", QUICKSTART, "--out", tmp_path / "local", "--workers", "1", *SMALLER)
    assert local.returncode == 0, local.stderr
    ray = cli("run", QUICKSTART, "--out", tmp_path / "ray", "--executor", "ray", *SMALLER)
    assert ray.returncode == 0, ray.stderr
    a = pd.read_csv(tmp_path / "local" / "quickstart" / "runs.csv")
    b = pd.read_csv(tmp_path / "ray" / "quickstart" / "runs.csv")
    assert len(a) == len(b) == 2 * (2 + 2 * 2 + 2 + 2 * 2)  # tuned and untuned: baselines, pruned, dense, narrow
    assert sorted(zip(a.key, a.seed)) == sorted(zip(b.key, b.seed))
    # Packs are the plan's, not cut to Ray's slots: every model trained beside the same models, to the same bits.
    assert_same_runs(tmp_path / "ray" / "quickstart" / "runs.csv", tmp_path / "local" / "quickstart" / "runs.csv")
    # Every progress line of a trained model says where it trained: a Ray worker, not the driver (a run recorded
    # from its twin trained nowhere).
    lines = [line for line in ray.stdout.splitlines() if PROGRESS.match(line) and "not trained again" not in line]
    assert lines and all(re.search(r"  on=\S+:\d+  ", line) for line in lines)
    assert len(trained(ray.stdout)) == len(set(trained(ray.stdout)))


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def pack_workers(root_pid):
    """The Ray workers below ``root_pid`` that are running a pack (Ray titles them ``ray::train_pack``)."""
    found, stack = [], children_of(root_pid)
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::train_pack"):
            found.append(pid)
        stack += children_of(pid)
    return found


def test_a_worker_killed_mid_pack_loses_nothing_and_every_run_is_recorded_once(tmp_path):
    study = tmp_path / "killed.py"
    study.write_text(
        "from widthvsprune import Pruning, Recipe, Study, Tuning\n"
        "STUDY = Study(name='killed', dataset='digits', family='mlp', widths=(24, 12), sparsities=(0.5, 0.9),\n"
        "              seeds=(0, 1), baseline=Recipe(epochs=6, batch_size=32), finetune=Recipe(epochs=2),\n"
        "              pruning=Pruning(frequency=5, end_fraction=0.75),\n"
        "              tuning=Tuning(oracle='random', trials=2, controls=False))\n")
    process = subprocess.Popen([sys.executable, "-m", "widthvsprune", "run", str(study), "--out", str(tmp_path / "out"),
                                "--executor", "ray"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []

    def killer():
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None:
            workers = pack_workers(process.pid)
            if workers:
                time.sleep(0.5)  # well inside the pack's training
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer)
    thread.start()
    stdout, stderr = process.communicate(timeout=600)
    thread.join()
    assert killed, "no pack ran in a Ray worker"
    assert process.returncode == 0, stderr
    models = trained(stdout)
    assert len(models) == len(set(models))  # nothing trained (reported) twice
    assert not any(f":{killed[0]}  " in line for line in stdout.splitlines())  # no outcome from the killed worker
    root = tmp_path / "out" / "killed"
    survey = results.survey(results.load_study(root), root)
    records = list(root.glob("runs/*/seed-*/record.json"))
    runs = pd.read_csv(root / "runs.csv")
    assert len(records) == len(survey.plan.runs) and all(state.done for state in survey.states.values())
    assert (runs.tuning == "tuned").sum() == 2 + 4 + 2 + 4 and not runs.test_accuracy.isna().any()


def test_without_ray_the_ray_executor_says_which_extra_to_install(tmp_path):
    env = without_imports(tmp_path, ("ray",))
    result = cli("run", QUICKSTART, "--out", tmp_path / "out", "--executor", "ray", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --executor: Expected Ray installed: pip install 'widthvsprune[ray]'. Received: --executor='ray'"]
    assert not (tmp_path / "out" / "quickstart").exists()


ARRAYS_STUDY = """
from sklearn.datasets import load_digits

from widthvsprune import Recipe, Study, Tuning

x, y = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
STUDY = Study(name="arrays", dataset=(x[:1400], y[:1400], x[1400:], y[1400:]), family="mlp", widths=(16, 8),
              sparsities=(0.5,), seeds=(0,), baseline=Recipe(epochs=1, batch_size=64),
              finetune=Recipe(epochs=1, batch_size=64), tuning=Tuning(oracle="random", trials=1, controls=False))
"""


def test_arrays_given_to_the_study_reach_the_ray_workers(tmp_path):
    (tmp_path / "arrays.py").write_text(ARRAYS_STUDY)
    result = cli("run", tmp_path / "arrays.py", "--out", tmp_path / "out", "--executor", "ray", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = pd.read_csv(tmp_path / "out" / "arrays" / "runs.csv")
    assert runs.dataset.str.startswith("arrays-").all() and (runs.test_examples == 397).all()
    lines = [line for line in result.stdout.splitlines() if PROGRESS.match(line) and "not trained again" not in line]
    assert lines and all(re.search(r"  on=\S+:\d+  ", line) for line in lines)  # trained on Ray's workers
