"""The command line as a user runs it: real subprocesses, real files, kill -9 and two runners."""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from conftest import assert_same_runs

STUDY = """
from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name={name!r},
    dataset="digits",
    family="mlp",
    widths=(24, 12),
    sparsities=(0.5, 0.9),
    seeds=(0, 1),
    baseline=Recipe(epochs={epochs}, batch_size=64, learning_rate={lr}, optimizer={optimizer!r}),
    finetune=Recipe(epochs=2, batch_size=64),
    pruning=Pruning(frequency=5, end_fraction=0.75),
    tuning=Tuning(oracle="random", trials=2, controls=False{tuning}),
)
"""


def study_file(tmp_path, name="cli", epochs=2, lr=1e-3, optimizer="adam", tuning=""):
    path = tmp_path / f"{name}.py"
    path.write_text(STUDY.format(name=name, epochs=epochs, lr=lr, optimizer=optimizer, tuning=tuning))
    return path


TUNED_ROWS = 2 + 4 + 2 + 4  # runs.csv's tuned rows: baselines, pruned, dense reference, narrow (2 seeds, 2 sparsities)


def complete(root):
    """Asserts that the study in ``root`` is complete: a record for every planned run, a row for every evaluated
    one, all of the tuned arms; returns the records."""
    from widthvsprune.store import results

    survey = results.survey(results.load_study(root), root)
    records = done_records(root)
    runs = pd.read_csv(root / "runs.csv")
    assert len(records) == len(survey.plan.runs) and all(r["status"] == "ok" for r in records.values())
    assert len(runs) == sum(r.role == "eval" for r in survey.plan.runs)
    assert (runs.tuning == "tuned").sum() == TUNED_ROWS
    return records


def cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)],
                          capture_output=True, text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A study run once to the end by two processes, never interrupted: ``(study file, results folder)``. Read it;
    copy to change it."""
    base = tmp_path_factory.mktemp("finished")
    path = study_file(base, "finished")
    result = cli("run", path, "--out", base / "out", "--workers", "2")
    assert result.returncode == 0, result.stderr
    return path, base / "out" / "finished"


def copy_of(finished, tmp_path):
    """A copy of the finished study's file and results under ``tmp_path``: ``(study file, out)``."""
    path, root = finished
    shutil.copytree(root, tmp_path / "out" / root.name)
    return shutil.copy(path, tmp_path / path.name), tmp_path / "out"


def start(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "widthvsprune", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def kill_9_when(ready, *args, timeout=300):
    """Starts `widthvsprune ARGS` and kills it with SIGKILL as soon as ``ready()`` holds."""
    process = start(*args)
    deadline = time.time() + timeout
    while time.time() < deadline and not ready():
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()


def done_records(root):
    return {p: json.loads(p.read_text()) for p in root.glob("runs/*/seed-*/record.json")}



@pytest.mark.parametrize("override,field", [
    ("dataset=imagenet", "dataset"),
    ("family=vgg16", "family"),
    ("sparsities=[0.5,1.0]", "sparsities"),
    ("seeds=[]", "seeds"),
    ("widths=[0,4]", "widths"),
    ("baseline.epochs=0", "baseline.epochs"),
    ("colour=red", "--set"),
    ("dataset=npz:/nonexistent/x.npz", "dataset"),
    ("family=model:nothere.keras", "family"),
    ("sparsities=0.5", "sparsities"),
])
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]])
def test_bad_input_stops_before_training_with_one_line(tmp_path, override, field, dry_run):
    if dry_run and field == "dataset":
        pytest.skip("a dry run without the dataset lists the runs it plans")
    path = study_file(tmp_path)
    result = cli("run", path, "--out", tmp_path / "out", "--set", override, *dry_run)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {field}: Expected") and "Received: " in lines[0]
    assert not (tmp_path / "out").exists()


def test_version_names_the_release():
    import widthvsprune

    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"widthvsprune {widthvsprune.__version__}"


@pytest.mark.parametrize("override,suggested", [("sparsitys=[0.5]", "sparsities"),
                                                ("pruning.alocation='erk'", "pruning.allocation"),
                                                ("tuning.trial=3", "tuning.trials")])
def test_a_near_miss_field_name_suggests_the_right_one(tmp_path, override, suggested):
    result = cli("run", study_file(tmp_path), "--out", tmp_path / "out", "--dry-run", "--set", override)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(f"; did you mean {suggested!r}?"), result.stderr


def test_near_miss_paths_suggest_the_right_one(tmp_path, finished):
    _, root = finished  # results/finished
    assert f"did you mean {str(root)!r}?" in cli("report", root.parent).stderr
    assert f"did you mean {str(root)!r}?" in cli("report", root.parent / "finishd").stderr
    path = study_file(tmp_path, "mine")
    assert f"did you mean {str(path)!r}?" in cli("run", tmp_path / "mine.pyy", "--dry-run").stderr


def test_dry_run_without_the_dataset_lists_the_planned_runs(tmp_path):
    path = study_file(tmp_path)
    result = cli("run", path, "--out", tmp_path / "out", "--dry-run", "--set", f"dataset=npz:{tmp_path / 'no.npz'}")
    assert result.returncode == 0, result.stderr
    assert "baseline search: to search" in result.stdout and "at most 40 models" in result.stdout
    assert "note: the dataset is not here" in result.stdout and "Expected an existing .npz file" in result.stdout


def test_dry_run_into_a_closed_pipe_ends_quietly(tmp_path):
    command = (f"{sys.executable} -m widthvsprune run {study_file(tmp_path)} --out {tmp_path / 'out'} --dry-run "
               "| head -1")
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith("study 'cli'")


def test_unwritable_results_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    result = cli("run", study_file(tmp_path), "--out", tmp_path / "file" / "out")
    assert result.returncode == 2
    assert "error: out: Expected a folder. Received: out=" in result.stderr


def test_missing_study_file(tmp_path):
    result = cli("run", tmp_path / "nope.py")
    assert result.returncode == 2
    assert "error: study: Expected an existing study file (.py). Received: study=" in result.stderr


def test_dry_run_lists_runs_and_trains_nothing(tmp_path):
    result = cli("run", study_file(tmp_path), "--out", tmp_path / "out", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "baseline search: to search" in result.stdout
    assert "every search: 2 random trials with search seed 10000" in result.stdout
    # Every search trains 2 trials and the 2 best again on a second seed. The baseline's search, the recipe's and the
    # tuned baselines (2 seeds each, and one each at the search seed): 10; the pruned and narrow arms: 2 x 2 x (4 + 2);
    # the dense reference: its search and 2 seeds: 6.
    assert "at most 40 models; nothing was trained" in result.stdout
    assert not (tmp_path / "out" / "cli").exists()


def test_kill_9_then_resume_keeps_finished_runs(tmp_path, finished):
    path, out = study_file(tmp_path, "killed"), tmp_path / "out"
    root = out / "killed"
    kill_9_when(lambda: len(done_records(root)) >= 4, "run", path, "--out", out)
    before = {p: p.stat().st_mtime_ns for p in done_records(root)}
    assert len(before) >= 4
    for written in root.glob("runs/**/*.json"):  # no half-written file took a real name
        json.loads(written.read_text())
    result = cli("run", path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert not list(root.glob("runs/**/.*.tmp"))  # what the kill left mid-write is cleared on resume
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished runs kept, not retrained
    assert "the record is kept" not in result.stdout + result.stderr  # a pack trained again reproduced its records
    complete(root)
    # The same study, never interrupted, has the same runs.csv, bit for bit: packs are the plan's, so the models
    # trained again after the kill trained beside the same models as before.
    assert_same_runs(root / "runs.csv", finished[1] / "runs.csv")
    comparison = pd.read_csv(root / "comparison.csv")
    assert list(comparison[comparison.contrast == "best vs best"].target_sparsity) == [0.5, 0.9]


def test_a_pack_cut_short_trains_again_whole_and_records_only_its_missing_run(tmp_path, finished):
    path, out = copy_of(finished, tmp_path)
    root = out / "finished"
    records = done_records(root)
    # What a kill between two records of one pack leaves: a tuned pruned run (in a pack of the stage's 6: the tuned
    # pruned runs and the dense reference's, which train alike) without
    # its record, which is written last.
    missing = next(p for p, r in sorted(records.items()) if r["arm"] == "pruned" and r["tuning"] == "tuned")
    expected = records.pop(missing)
    missing.unlink()
    before = {p: p.stat().st_mtime_ns for p in records}
    result = cli("run", path, "--out", out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "(+5 more, trained together)" in result.stdout  # the whole pack trained again
    assert {p: p.stat().st_mtime_ns for p in before} == before  # the others' records are kept as they were
    assert "the record is kept" not in result.stdout + result.stderr  # and their models reproduced them
    again = json.loads(missing.read_text())
    # The same record, its files' hashes included; only the wall time differs.
    assert {k: v for k, v in again.items() if k != "train_seconds"} == \
        {k: v for k, v in expected.items() if k != "train_seconds"}
    assert_same_runs(root / "runs.csv", finished[1] / "runs.csv")


def test_one_or_two_workers_give_the_same_runs_bit_for_bit(tmp_path, finished):
    path, out = study_file(tmp_path, "alone"), tmp_path / "out"
    result = cli("run", path, "--out", out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    complete(out / "alone")
    assert_same_runs(out / "alone" / "runs.csv", finished[1] / "runs.csv")  # the fixture ran with two


def completed_trials(root):
    out = {}
    for path in root.glob("runs/narrow-*/search/trial_*/trial.json"):  # the narrow searches' trials
        if json.loads(path.read_text()).get("status") == "COMPLETED":
            out[path] = path.stat().st_mtime_ns
    return out


def test_kill_9_during_the_narrow_search_continues_it_to_the_same_runs(tmp_path):
    path, out = study_file(tmp_path, "search"), tmp_path / "out"
    path.write_text(path.read_text().replace('oracle="random", trials=2', 'oracle="bayesian", trials=4'))
    root = out / "search"
    kill_9_when(lambda: len(completed_trials(root)) >= 3, "run", path, "--out", out)
    finished = completed_trials(root)
    models_before = {p: p.stat().st_mtime_ns for p in done_records(root)}
    assert len(finished) >= 3
    result = cli("run", path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # finished trials are not run again
    assert {p: p.stat().st_mtime_ns for p in models_before} == models_before
    assert len(completed_trials(root)) == 2 * 4  # two searches of 4 trials, none started over
    narrow = pd.read_csv(root / "runs.csv").query("arm == 'narrow'")
    assert set(narrow.search_trials) == {4 + 2}  # and its 2 best trained again on a second seed
    # The same study never interrupted (and by one process) chooses the same configurations: the same runs.csv.
    result = cli("run", path, "--out", tmp_path / "whole", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert_same_runs(root / "runs.csv", tmp_path / "whole" / "search" / "runs.csv")


def test_ctrl_c_stops_cleanly_and_the_next_run_finishes(tmp_path):
    path, out = study_file(tmp_path, "interrupted"), tmp_path / "out"
    root = out / "interrupted"
    # A new session, so that the signal goes to the whole process group, helpers included, as Ctrl-C does.
    process = start("run", path, "--out", out, "--workers", "2", start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(done_records(root)) < 2:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    [line] = stderr.strip().splitlines()
    assert re.fullmatch(r"interrupted: \d+ model\(s\) of study 'interrupted' are done and kept \(\d+ trained by "
                        r"this command\); run the same command again to resume\.", line), line
    kept = {p: p.stat().st_mtime_ns for p, r in done_records(root).items() if r["status"] == "ok"}
    assert kept
    result = cli("run", path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    complete(root)


SLOW_BUILD = """
import os
import time

from widthvsprune import Family, Recipe, Study, Tuning, register_family
from widthvsprune.families import dense

MARKER = {marker!r}


def build(widths, input_shape, num_classes, keras):
    if not os.path.exists(MARKER):  # the first build waits to be interrupted
        open(MARKER, "w").close()
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            raise ValueError("the build was cut short") from None  # as a library that catches everything may
    return dense.build_mlp(widths, input_shape, num_classes, keras)


register_family(Family("slow_mlp", (24, 12), dense.count_mlp, build))
STUDY = Study(name="slow", dataset="digits", family="slow_mlp", sparsities=(0.5,), engine="jax",
              baseline=Recipe(epochs=1, batch_size=64), tuning=Tuning(oracle="random", trials=2, controls=False))
"""


def test_ctrl_c_while_the_jax_engine_builds_a_model_exits_130_with_one_line_and_records_nothing(tmp_path):
    path = tmp_path / "slow.py"
    path.write_text(SLOW_BUILD.format(marker=str(tmp_path / "building")))
    process = subprocess.Popen([sys.executable, "-m", "widthvsprune", "run", str(path), "--out", str(tmp_path / "out"),
                                "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 120
    while not (tmp_path / "building").exists() and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == [
        "interrupted: 0 model(s) of study 'slow' are done and kept (0 trained by this command); run the same command "
        "again to resume."]
    assert not list((tmp_path / "out").glob("slow/runs/*/seed-*/record.json"))  # no failure recorded


def test_a_partial_run_keeps_the_rest_of_the_study_in_the_reports(tmp_path, finished):
    path, out = copy_of(finished, tmp_path)
    root = out / "finished"
    before = {p: p.stat().st_mtime_ns for p in done_records(root)}
    result = cli("run", path, "--out", out, "--set", "sparsities=[0.5]")
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in done_records(root)} == before  # all of it was done already
    result = cli("report", root)
    assert result.returncode == 0, result.stderr
    comparison = pd.read_csv(root / "comparison.csv")
    assert list(comparison[comparison.contrast == "best vs best"].target_sparsity) == [0.5, 0.9]
    complete(root)
    assert len(list((root / "history").glob("*.json"))) == 2


def test_two_runners_share_one_study(tmp_path):
    path, out = study_file(tmp_path, "shared"), tmp_path / "out"
    first, second = start("run", path, "--out", out), start("run", path, "--out", out)
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    progress = re.compile(r"^(?:\[w\d+\])?\[\s*\d+/\d+\] (.+?)  ")
    trained = [m.group(1) for o, _ in outputs for m in map(progress.match, o.splitlines()) if m]
    assert len(trained) == len(set(trained)), trained  # nothing was trained twice
    complete(out / "shared")


def test_diverging_runs_are_recorded_as_failures_and_retried(tmp_path):
    # Every learning rate the search may choose diverges.
    path, out = study_file(tmp_path, "diverge", optimizer="sgd",
                           tuning=", learning_rate_min=1e8, learning_rate_max=1e9"), tmp_path / "out"
    result = cli("run", path, "--out", out)
    assert result.returncode == 1
    assert "run(s) failed" in result.stdout + result.stderr
    failed = [r for r in done_records(out / "diverge").values() if r["status"] == "failed"]
    baselines = [r for r in failed if r["arm"] == "baseline"]
    assert len(baselines) == 3 and all("non-finite" in r["error"] for r in baselines)  # with the search seed's
    assert "pruned search sparsity=0.5: skipped, its baselines (seed 10000) did not train" in result.stdout
    status = cli("status", out / "diverge")
    assert "baseline  0/2 done, 2 failed" in status.stdout
    assert "failed: baseline seed=0" in status.stdout
    # The next run tries the failed runs again.
    again = cli("run", path, "--out", out)
    assert again.returncode == 1 and "run(s) failed (retried on the next run)" in again.stdout
    retried = [r for r in done_records(out / "diverge").values() if r["arm"] == "baseline" and r["status"] == "failed"]
    assert [r["attempts"] for r in retried] == [2, 2, 2]
    assert len(pd.read_csv(out / "diverge" / "runs.csv")) == 0


def test_tensorboard_logs_are_written_per_run(tmp_path):
    path = study_file(tmp_path, "tb")
    result = cli("run", path, "--out", tmp_path / "out", "--engine", "tf_keras", "--set", "tensorboard=True",
                 "--set", "seeds=[0]",
                 "--set", "sparsities=[0.5]")
    assert result.returncode == 0, result.stderr
    root = tmp_path / "out" / "tb"
    for arm in ("baseline", "pruned", "narrow"):
        events = list(root.glob(f"runs/{arm}-*/seed-0/tensorboard/**/events.out.tfevents.*"))
        assert events, arm


def test_report_regenerates_tables_from_records(tmp_path, finished):
    _, out = copy_of(finished, tmp_path)
    root = out / "finished"
    before = (root / "runs.csv").read_text()
    (root / "runs.csv").unlink()
    (root / "comparison.csv").unlink()
    result = cli("report", root, "--size", "sparse_bytes")
    assert result.returncode == 0, result.stderr
    assert (root / "runs.csv").read_text() == before
    assert set(pd.read_csv(root / "comparison.csv").size_axis) == {"sparse_bytes"}
    assert "best vs best: large-sparse won at" in result.stdout


def test_python_study_file_runs_itself(tmp_path):
    path = study_file(tmp_path, "selfrun")
    path.write_text(path.read_text() + "\nif __name__ == '__main__':\n"
                    "    from widthvsprune.cli import run_file\n    run_file(__file__)\n")
    result = subprocess.run([sys.executable, str(path), "--dry-run", "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "study 'selfrun'" in result.stdout


def fake_cifar_cache(home):
    """A Keras cache holding a tiny CIFAR-10 in its own format (pickled batches of 3x32x32 uint8 rows)."""
    import pickle

    import numpy as np

    folder = home / ".keras" / "datasets" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8), b"labels": list(range(10)) * 4}
        (folder / name).write_bytes(pickle.dumps(batch))


@pytest.mark.parametrize("study", ["cifar10_resnet", "cifar10_mobilenet"])
def test_the_cifar_studies_dry_run_from_a_cached_file(tmp_path, study):
    fake_cifar_cache(tmp_path)
    path = pathlib.Path(__file__).resolve().parent.parent / "studies" / f"{study}.py"
    result = cli("run", path, "--out", tmp_path / "out", "--dry-run", env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert f"study {study!r}" in result.stdout and "baseline search: to search" in result.stdout
    assert "nothing was trained" in result.stdout


FRAGILE = """
from widthvsprune import Family, Recipe, Study, Tuning, register_family
from widthvsprune.families import dense


def build(widths, input_shape, num_classes, keras):
    if widths[0] < 4:
        raise ValueError(f"no model narrower than 4 units (widths={{widths}})")
    return dense.build_mlp(widths, input_shape, num_classes, keras)


register_family(Family("fragile_mlp", (24, 12), dense.count_mlp, build))
STUDY = Study(name="fragile", dataset="digits", family="fragile_mlp", sparsities=(0.5, 0.97), seeds=(0,),
              baseline=Recipe(epochs=1, batch_size=64), finetune=Recipe(epochs=1, batch_size=64),
              tuning=Tuning(oracle="random", trials=2, controls=False))
"""


def test_a_builder_that_raises_gives_failed_records_and_a_finished_study(tmp_path):
    path = tmp_path / "fragile.py"
    path.write_text(FRAGILE)
    result = cli("run", path, "--out", tmp_path / "out", "--workers", "1")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["2 run(s) failed; run the same command again to retry them."]
    assert "Traceback" not in result.stdout + result.stderr
    root = tmp_path / "out" / "fragile"
    failed = [r for r in done_records(root).values() if r["status"] == "failed"]
    assert len(failed) == 2 and all(r["arm"] == "narrow" and r["target_sparsity"] == 0.97 for r in failed)
    assert all(r["error"].startswith("ValueError: no model narrower than 4 units") for r in failed)
    runs = pd.read_csv(root / "runs.csv")  # the rest of the study is there
    assert set(runs.arm) == {"baseline", "pruned", "dense_finetuned", "narrow"} and (root / "report.md").exists()


def test_the_tf_keras_engine_gives_the_same_runs_with_one_or_two_workers(tmp_path):
    path = study_file(tmp_path, "tf")
    for workers in (1, 2):
        result = cli("run", path, "--out", tmp_path / str(workers), "--engine", "tf_keras", "--workers", workers)
        assert result.returncode == 0, result.stderr
    assert set(pd.read_csv(tmp_path / "1" / "tf" / "runs.csv").engine) == {"tf_keras"}
    assert_same_runs(tmp_path / "1" / "tf" / "runs.csv", tmp_path / "2" / "tf" / "runs.csv")


WIDE_ONLY = """
from widthvsprune import Family, Recipe, Study, Tuning, register_family
from widthvsprune.families import dense


def build(widths, input_shape, num_classes, keras):
    if widths[0] < 40:
        raise ValueError(f"no model narrower than 40 units (widths={{widths}})")
    return dense.build_mlp(widths, input_shape, num_classes, keras)


register_family(Family("wide_only", (128,), None, build))  # counted by building: the budget solver meets the error
STUDY = Study(name="wide_only", dataset="digits", family="wide_only", sparsities=(0.5, 0.9), seeds=(0,),
              baseline=Recipe(epochs=1, batch_size=64), finetune=Recipe(epochs=1, batch_size=64),
              tuning=Tuning(oracle="random", trials=2, controls=False))
"""


def test_widths_a_builder_refuses_are_infeasible_for_the_budget_solver_and_the_study_finishes(tmp_path):
    path = tmp_path / "wide_only.py"
    path.write_text(WIDE_ONLY.replace("{{", "{").replace("}}", "}"))
    result = cli("run", path, "--out", tmp_path / "out", "--workers", "1")
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["1 run(s) failed; run the same command again to retry them."]
    assert "Traceback" not in result.stdout + result.stderr
    root = tmp_path / "out" / "wide_only"
    failed = [r for r in done_records(root).values() if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["arm"] == "narrow" and failed[0]["target_sparsity"] == 0.9
    assert failed[0]["error"].startswith("ValueError: no model narrower than 40 units")
    assert "FAILED narrow sparsity=0.9 seed=0" in result.stdout and "no model narrower than 40 units" in result.stdout
    runs = pd.read_csv(root / "runs.csv")  # the narrow model at 50% builds (64 units) and is compared
    narrow = runs[runs.arm == "narrow"]
    assert list(narrow.target_sparsity) == [0.5] and (narrow.total_params <= narrow.budget).all()
    assert (root / "report.md").exists()
