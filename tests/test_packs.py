"""Packs: which runs train together follows from the plan alone, whoever trains them and however many processes."""

import random

import pytest
from conftest import tiny_study

from widthvsprune import Tuning, arms, data
from widthvsprune.plan import packs, planner
from widthvsprune.run import progress
from widthvsprune.run.scheduler import Runner
from widthvsprune.store import results


@pytest.mark.parametrize("n,size,lengths", [
    (0, 16, []), (1, 16, [1]), (16, 16, [16]), (17, 16, [9, 8]), (20, 16, [10, 10]), (33, 16, [11, 11, 11]),
    (7, 3, [3, 2, 2]), (5, 1, [1] * 5),
])
def test_chunks_are_the_fewest_even_consecutive_parts(n, size, lengths):
    parts = packs.chunks(range(n), size)
    assert [len(p) for p in parts] == lengths
    assert [i for p in parts for i in p] == list(range(n))


def test_a_chunk_size_below_one_is_refused():
    with pytest.raises(ValueError, match=r"^Expected size to be at least 1\. Received: size=0$"):
        packs.chunks([1, 2], 0)


def many_runs():
    """A study whose first stage holds 8 baselines of one fit (7 seeds and the search seed)."""
    study = tiny_study(seeds=tuple(range(7)), sparsities=(0.5, 0.8, 0.9),
                       tuning=Tuning(oracle="random", trials=2, controls=True))
    return study, planner.plan(study)


def fit_of(study, n_train=1000):
    return lambda run: arms.get(run.arm).fit(study, n_train)


def test_a_stages_packs_depend_on_its_runs_only_not_on_their_order():
    study, plan = many_runs()
    stage = [r for r in plan.runs if r.stage == 0]
    expected = packs.stage_packs(stage, fit_of(study))
    assert [len(p) for p in expected] == [8]  # the baseline at the search seed and 7 evaluated ones
    for seed in range(5):
        shuffled = list(stage)
        random.Random(seed).shuffle(shuffled)
        assert packs.stage_packs(shuffled, fit_of(study)) == expected
    ids = [r.id for p in expected for r in p]
    assert ids == sorted(ids) and len(set(ids)) == len(stage)


def test_runs_of_another_fit_never_share_a_pack_and_no_pack_is_too_large():
    study, plan = many_runs()
    runs = [r for r in plan.runs if r.stage == 0]
    # A second fit among the runs: the evaluated seeds train one way, the search seed's baseline another.
    other = {r.id for r in runs if r.role == "search"}
    fit = fit_of(study)
    found = packs.stage_packs(runs, lambda r: ("other", fit(r)) if r.id in other else fit(r), size=3)
    assert sorted(len(p) for p in found) == [1, 2, 2, 3]  # 1 of the other fit; 7 cut into 3, 2 and 2
    for pack in found:
        assert len({r.id in other for r in pack}) == 1 and len(pack) <= 3
    assert sorted(r.id for p in found for r in p) == sorted(r.id for r in runs)


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


def test_every_process_cuts_a_stage_into_the_same_packs_whatever_is_done_or_how_many_share_it(tmp_path, splits):
    study = tiny_study(seeds=tuple(range(20)), tuning=Tuning(oracle="random", trials=2, controls=True))
    survey = results.survey(study, tmp_path / "empty")
    runs, _ = Runner(study, tmp_path, splits, None, progress.silent()).pending(survey)
    assert len(runs) == 21  # 20 seeds and the search seed's baseline: one fit, 2 packs of at most 16
    everything = Runner(study, tmp_path, splits, None, progress.silent()).packs(survey, runs)
    assert [len(p) for p in everything] == [11, 10]
    for workers in (1, 2, 3):
        runner = Runner(study, tmp_path, splits, None, progress.silent(), workers=workers)
        assert runner.packs(survey, runs) == everything
        # With only some runs left to train (the others recorded), their packs are the same: whole.
        assert runner.packs(survey, [everything[1][-1]]) == everything[1:]
        assert runner.packs(survey, [everything[0][3], everything[1][0]]) == everything
