"""A configuration is trained once: a run whose model is that of a run of an earlier stage (a search that chose its
recipe as written) is recorded from it, under its own key."""

import json

import numpy as np
import pandas as pd
import pytest

from widthvsprune import Recipe, Study, Tuning
from widthvsprune.plan import planner
from widthvsprune.plan.planner import Run


def run(tuning, stage, lr=1e-3, seed=0, arm="pruned", baseline="untuned"):
    config = {"arm": arm, "tuning": tuning, "baseline": {"tuning": baseline, "recipe": {"learning_rate": 1e-3}},
              "finetune": {"learning_rate": lr}}
    return Run(arm, tuning, 0.5, seed, f"{tuning}-{stage}-{lr}-{baseline}", config, stage=stage)


def test_runs_that_differ_only_in_their_tuning_labels_are_twins_of_the_earlier_stages_run():
    untuned, tuned = run("untuned", 2), run("tuned", 3)
    other_rate, other_seed = run("tuned", 3, lr=2e-3), run("tuned", 3, seed=1)
    tuned_baseline = run("tuned", 3, baseline="tuned")  # its baseline a twin of the recipe's: the same weights
    found = planner.twins([tuned, other_rate, untuned, other_seed, tuned_baseline])
    assert found == {tuned.id: untuned.id, tuned_baseline.id: untuned.id}
    assert planner.twins([untuned, run("tuned", 2, baseline="tuned")]) == {}  # one stage: each trains
    assert planner.twins([run("tuned", 3), run("untuned", 2, arm="narrow")]) == {}  # another arm


@pytest.fixture(scope="module")
def one_trial(tmp_path_factory):
    """A study whose searches have one trial, the recipe as written: every tuned configuration is its control's."""
    from widthvsprune import run_study

    base = tmp_path_factory.mktemp("twins")
    study = Study(name="twins", dataset="digits", family="mlp", widths=(24, 12), sparsities=(0.5,), seeds=(0, 1),
                  baseline=Recipe(epochs=2, batch_size=64), finetune=Recipe(epochs=2, batch_size=64),
                  tuning=Tuning(oracle="random", trials=1, rescore=0), engine="jax")
    result = run_study(study, out=base, workers=1, stream=open(base / "log.txt", "w"))
    return study, base / "twins", result


def test_a_tuned_run_that_is_its_control_is_recorded_from_it_not_trained(one_trial):
    study, root, result = one_trial
    records = {}
    for path in (root / "runs").rglob("record.json"):
        records[(path.parent.parent.name, path.parent.name)] = (path.parent, json.loads(path.read_text()))
    linked = [(folder, r) for folder, r in records.values() if "same_as" in r]
    assert len(linked) == result.linked > 0 and not result.failed
    for folder, record in linked:
        key, seed = record["same_as"].split("/")
        twin_folder, twin = records[(key, seed)]
        assert record["tuning"] == "tuned" and twin["tuning"] == "untuned" and record["arm"] == twin["arm"]
        assert record["key"] != twin["key"] and record["test_accuracy"] == twin["test_accuracy"]
        for name in twin["files"]:
            assert (folder / name).read_bytes() == (twin_folder / name).read_bytes()
    # The baseline's tuned runs, the tuned pruned and fine-tuned runs starting from them, and the tuned narrow runs
    # (a search of one trial chose the control's widths and rate) are all linked.
    assert {r["arm"] for _, r in linked} == {"baseline", "pruned", "dense_finetuned", "narrow"}
    narrow = [r for _, r in linked if r["arm"] == "narrow"]
    assert len(narrow) == len(study.sparsities) * len(study.seeds) and all(r["same_as"].startswith("narrow-")
                                                                           for r in narrow)
    runs = pd.read_csv(root / "runs.csv")
    pruned = runs[runs.arm == "pruned"].set_index(["tuning", "seed"])
    assert np.array_equal(pruned.loc["tuned"].test_accuracy, pruned.loc["untuned"].test_accuracy)


def test_a_second_run_trains_and_links_nothing(one_trial):
    from widthvsprune import run_study

    study, root, _ = one_trial
    again = run_study(study, out=root.parent, workers=1, stream=open(root.parent / "log2.txt", "w"))
    assert again.trained == 0 and again.linked == 0


def test_a_dry_run_says_which_runs_are_recorded_from_their_twin(one_trial, tmp_path):
    import shutil

    from widthvsprune.run import overview

    study, root, _ = one_trial
    copy = tmp_path / "twins"
    shutil.copytree(root, copy)
    linked = [p for p in (copy / "runs").rglob("record.json") if "same_as" in json.loads(p.read_text())]
    linked[0].unlink()  # one twin's record gone: the next run records it from its twin again, training nothing
    lines = [line for line in overview.dry_run(study, copy) if "to record from" in line]
    assert len(lines) == 1 and lines[0].endswith(", the same model")
    assert not any(line.endswith("to train") for line in overview.dry_run(study, copy))
