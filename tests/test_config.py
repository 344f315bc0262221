"""Study validation: every problem named by field and value, all at once, before training."""

import dataclasses

import pytest

from widthvsprune import Pruning, Recipe, Study, StudyError, Tuning, apply_overrides, load_study


def problems_of(**fields):
    with pytest.raises(StudyError) as info:
        Study(name="s", **fields)
    return info.value.problems


@pytest.mark.parametrize("fields,field,value", [
    (dict(dataset="imagenet"), "dataset", "'imagenet'"),
    (dict(family="vgg16"), "family", "'vgg16'"),
    (dict(sparsities=(0.5, 1.0)), "sparsities", "(0.5, 1.0)"),
    (dict(sparsities=(-0.1,)), "sparsities", "(-0.1,)"),
    (dict(sparsities=()), "sparsities", "()"),
    (dict(seeds=()), "seeds", "()"),
    (dict(seeds=(1, 1)), "seeds", "(1, 1)"),
    (dict(widths=(0, 10)), "widths", "(0, 10)"),
    (dict(widths=(-3, 10)), "widths", "(-3, 10)"),
    (dict(family="seed_cnn", widths=(4, 4)), "widths", "(4, 4)"),
    (dict(family="lenet5", widths=(6, 16)), "widths", "(6, 16)"),
    (dict(baseline=Recipe(epochs=0)), "baseline.epochs", "0"),
    (dict(finetune=Recipe(batch_size=-1)), "finetune.batch_size", "-1"),
    (dict(baseline=Recipe(learning_rate=0.0)), "baseline.learning_rate", "0.0"),
    (dict(baseline=Recipe(optimizer="rmsprop")), "baseline.optimizer", "'rmsprop'"),
    (dict(pruning=Pruning(allocation="l1")), "pruning.allocation", "'l1'"),
    (dict(pruning=Pruning(variant="l1")), "pruning.allocation", "'l1'"),  # the field's earlier name
    (dict(pruning=Pruning(frequency=0)), "pruning.frequency", "0"),
    (dict(tuning=Tuning(oracle="grid")), "tuning.oracle", "'grid'"),
    (dict(tuning=Tuning(trials=0)), "tuning.trials", "0"),
    (dict(tuning=Tuning(allocations=("uniform", "l0"))), "tuning.allocations", "('uniform', 'l0')"),
    (dict(tuning=Tuning(variants=("layerwise", "l0"))), "tuning.allocations", "('uniform', 'l0')"),
    (dict(tuning=Tuning(outputs=())), "tuning.outputs", "()"),
    (dict(tuning=Tuning(frequencies=(0, 5))), "tuning.frequencies", "(0, 5)"),
    (dict(tuning=Tuning(seed=1), seeds=(0, 1)), "tuning.seed", "1"),
    (dict(min_effect=-0.1), "min_effect", "-0.1"),
    (dict(tolerance=0.0), "tolerance", "0.0"),
    (dict(tolerance=1.0), "tolerance", "1.0"),
    (dict(validation_fraction=1.5), "validation_fraction", "1.5"),
])
def test_each_bad_field_is_named_with_its_value_and_what_is_accepted(fields, field, value):
    problems = problems_of(**fields)
    assert len(problems) == 1
    line = problems[0]
    assert line.startswith(f"{field}: Expected ")
    assert f"Received: {field}={value}" in line
    assert "\n" not in line


def test_all_problems_are_reported_at_once():
    problems = problems_of(dataset="nope", family="nope", seeds=(), sparsities=(2.0,),
                           baseline=Recipe(epochs=-1, learning_rate=-1.0))
    fields = [p.split(":")[0] for p in problems]
    assert fields == ["dataset", "family", "sparsities", "seeds", "baseline.epochs",
                      "baseline.learning_rate"]


def test_family_default_widths_fill_in():
    assert Study(name="s", family="seed_cnn").widths == (12,)
    assert Study(name="s", family="lenet5").widths == (6, 16, 120, 84)


def test_study_round_trips_through_its_dict():
    from widthvsprune.study import study_from_dict

    study = Study(name="s", seeds=(0, 1), tuning=Tuning(trials=3, frequencies=(5, 10)))
    assert study_from_dict(study.to_dict()) == study


def test_overrides_set_top_level_and_nested_fields():
    study = apply_overrides(Study(name="s"), ["seeds=[0,1,2]", "finetune.epochs=5", "dataset=npz:my.npz",
                                              "sparsities=[0.5, 0.9]", "tuning.trials=3"])
    assert study.seeds == (0, 1, 2)
    assert study.finetune == dataclasses.replace(Recipe(epochs=2), epochs=5)
    assert study.dataset == "npz:my.npz"
    assert study.sparsities == (0.5, 0.9)


def test_overriding_the_family_takes_its_default_widths():
    assert apply_overrides(Study(name="s"), ["family=seed_cnn"]).widths == (12,)


@pytest.mark.parametrize("override,field,received", [
    ("colour=red", "--set", "--set='colour'"),
    ("baseline.momentum=0.9", "--set", "--set='baseline.momentum'"),
    ("seeds=zero", "seeds", "seeds='zero'"),
    ("finetune.epochs=2.5", "finetune.epochs", "finetune.epochs=2.5"),
    ("tensorboard=1", "tensorboard", "tensorboard=1"),
    ("sparsities=[0.5, 1.5]", "sparsities", "sparsities=(0.5, 1.5)"),
    ("sparsities=0.5", "sparsities", "sparsities=0.5"),  # a list of one is [0.5]
    ("seeds=0", "seeds", "seeds=0"),
    ("noequals", "--set", "--set='noequals'"),
])
def test_bad_overrides_name_the_field(override, field, received):
    with pytest.raises(StudyError) as info:
        apply_overrides(Study(name="s"), [override])
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{field}: Expected")
    assert f"Received: {received}" in info.value.problems[0]


def test_several_bad_overrides_are_reported_together():
    with pytest.raises(StudyError) as info:
        apply_overrides(Study(name="s"), ["colour=red", "seeds=[]", "baseline.epochs=0"])
    assert [p.split(":")[0] for p in info.value.problems] == ["--set", "seeds", "baseline.epochs"]


def test_study_file_that_does_not_exist(tmp_path):
    with pytest.raises(StudyError, match=r"study: Expected an existing study file.*Received: study="):
        load_study(tmp_path / "missing.py")


def test_study_file_without_study(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("x = 1\n")
    with pytest.raises(StudyError, match=r"study: Expected the file to define STUDY.*STUDY is missing"):
        load_study(path)


def test_study_file_that_raises(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import math\n\nraise RuntimeError('boom')\n")
    with pytest.raises(StudyError, match=r"raised RuntimeError: boom \(line 3\)"):
        load_study(path)


def test_study_file_with_an_invalid_study_names_the_file_and_field(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("from widthvsprune import Study\nSTUDY = Study(seeds=())\n")
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert info.value.problems == [f"{path}: seeds: Expected a non-empty tuple of integers >= 0. "
                                   "Received: seeds=()"]


def test_study_file_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_study.py"
    path.write_text("from widthvsprune import Study\nSTUDY = Study()\n")
    assert load_study(path).name == "my_study"


def test_the_search_seed_is_never_an_evaluation_seed():
    assert Study(name="s", seeds=(0, 1, 2)).search_seed == 10_000
    assert Study(name="s", seeds=(10_000, 10_001, 3)).search_seed == 10_002
    assert Study(name="s", seeds=(0,), tuning=Tuning(seed=7)).search_seed == 7


def test_the_pruned_search_chooses_among_the_frequency_and_its_fractions():
    assert Study(name="s", pruning=Pruning(frequency=100)).frequencies == (100, 50, 25)
    assert Study(name="s", pruning=Pruning(frequency=2)).frequencies == (2, 1)
    assert Study(name="s", tuning=Tuning(frequencies=(7,))).frequencies == (7,)


def test_the_tolerance_is_read_by_the_reports_only_and_changes_no_run_key_nor_an_unchanged_studys_record():
    from conftest import tiny_study

    from widthvsprune.plan import planner

    def keys_of(study):
        return [(r.key, r.seed) for r in planner.plan(study).runs] + [s.key for s in planner.plan(study).searches]

    assert keys_of(tiny_study()) == keys_of(tiny_study(tolerance=0.05))
    assert "tolerance" not in tiny_study().to_dict()  # the default: study.json and its history hash as before
    assert tiny_study(tolerance=0.02).to_dict()["tolerance"] == 0.02
    assert apply_overrides(tiny_study(), ["tolerance=0.02"]).tolerance == 0.02
