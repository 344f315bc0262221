"""Keys hash what a study asks for: registering one more allocation changes no run or search key."""

import pytest
from conftest import tiny_study

from widthvsprune import Tuning
from widthvsprune.plan import planner
from widthvsprune.pruning import allocations


def planned_keys():
    """Every run and search key of a tiny study whose baseline search has finished."""
    study = tiny_study(tuning=Tuning(oracle="random", trials=3))
    plan = planner.plan(study)
    [baseline_search] = plan.searches
    plan = planner.plan(study, {}, {baseline_search.key: {"status": "ok", "learning_rate": 0.004}})
    return {r.key for r in plan.runs} | {s.key for s in plan.searches}, [s.key for s in plan.searches
                                                                        if s.arm == "pruned"]


def test_the_default_allocations_are_the_fixed_first_version():
    assert Tuning().allocations == allocations.DEFAULT_ALLOCATIONS_V1 == (
        "uniform", "first_dense", "uniform_plus", "erk", "lamp", "global")


def test_the_default_pruned_search_keys_are_those_of_release_0_3():
    _, pruned = planned_keys()
    assert pruned == ["search-pruned-0.5-1685c0dfd831", "search-pruned-0.9-160713bc8070"]


def test_registering_an_allocation_changes_no_run_or_search_key():
    before, _ = planned_keys()
    allocations.register_allocation("extra_test", allocations.uniform)
    try:
        assert "extra_test" in allocations.allocation_names(searchable=True)
        assert "extra_test" not in Tuning().allocations  # joins a search only when named
        after, _ = planned_keys()
        assert after == before
        named = Tuning(allocations=(*allocations.DEFAULT_ALLOCATIONS, "extra_test"))
        assert named.allocations[-1] == "extra_test" and named.problems() == []
    finally:
        allocations._REGISTRY.pop("extra_test", None)


def test_random_selection_with_allocations_decided_at_every_update_is_refused_at_registration():
    with pytest.raises(ValueError, match='selection: Expected "magnitude" with weights="update". '
                                         "Received: selection='random'"):
        allocations.register_allocation("random_global_test", allocations.global_magnitude, weights="update",
                                        selection="random")
    assert "random_global_test" not in allocations.allocation_names()
