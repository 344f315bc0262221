"""The proposals of seeded searches, pinned: the values every trial of a fixed search trains.

A change in how the oracles are driven (their state, their random state,
the acquisition search) that changed a proposal would change every tuned
result; these values were recorded with KerasTuner 1.4 and scikit-learn 1.9.
Random search's pins hold to the last bit. Bayesian optimization's
Gaussian-process fit differs in its last bits between scikit-learn releases
(1.3 proposes other values from the fourth trial on), so its pins hold with
the scikit-learn release they were recorded with only; and between
processors, whose BLAS kernels sum in another order (on an AMD EPYC one
proposal of six differs from the pin recorded on another processor, by 2.7e-6
of its value), so they hold to :data:`CLOSE` of each value. A change in how
the oracle is driven changes the values far more than that.
"""

import importlib.metadata
import math

import pytest

from widthvsprune.run import tuning

RECORDED_WITH = "1.9"  # scikit-learn's release of the Bayesian pins
same_gaussian_process = pytest.mark.skipif(
    not importlib.metadata.version("scikit-learn").startswith(RECORDED_WITH + "."),
    reason=f"the Bayesian pins were recorded with scikit-learn {RECORDED_WITH}")

ALLOCATIONS = ["uniform", "erk", "lamp"]
CLOSE = 1e-4  # relative: a Bayesian pin's tolerance for another processor's last bits


def close(got, pinned):
    """Whether proposals (values, or tuples of a name and values) equal the pinned ones, numbers to CLOSE."""
    flat = [v for g in got for v in (g if isinstance(g, tuple) else (g,))]
    flat_pinned = [v for g in pinned for v in (g if isinstance(g, tuple) else (g,))]
    return len(got) == len(pinned) and len(flat) == len(flat_pinned) and all(
        a == b if isinstance(b, str) else math.isclose(a, b, rel_tol=CLOSE) for a, b in zip(flat, flat_pinned))


def space(hp):
    hp.Float("learning_rate", 1e-4, 3e-2, sampling="log", default=1e-3)
    hp.Float("share_1", 0.25, 4.0, sampling="log", default=1.0)
    hp.Choice("allocation", ALLOCATIONS, default="uniform")


def score(values):
    return (-abs(math.log(values["learning_rate"] / 3e-3)) - abs(math.log(values["share_1"]))
            - 0.1 * ALLOCATIONS.index(values["allocation"]))


def proposals(folder, oracle):
    job = tuning.SearchJob(str(folder), space, oracle, 9, seed=10_000,
                           first=({"allocation": "erk"}, {"allocation": "lamp"}), batch=2)
    seen = []

    def train(batch):
        seen.extend(p.values for p in batch)
        return [(score(p.values), {}) for p in batch]

    tuning.search_many([job], train)
    return [(v["allocation"], v["learning_rate"], v["share_1"]) for v in seen]


GIVEN = [("uniform", 0.001, 1.0), ("erk", 0.001, 1.0), ("lamp", 0.001, 1.0)]


@same_gaussian_process
def test_a_seeded_bayesian_search_proposes_the_pinned_values(tmp_path):
    assert close(proposals(tmp_path / "s", "bayesian"), GIVEN + [
        ("uniform", 0.0040998476938292954, 0.45848458116562263),
        ("uniform", 0.0006040542633949057, 0.5755971761387725),
        ("uniform", 0.012234226161539886, 0.6700077087501306),
        ("uniform", 0.0012490714092886635, 3.8891174627673477),
        ("uniform", 0.021290083277456226, 0.2944001118094647),
        ("uniform", 0.000568412527366319, 2.2948730591735638),
    ])


def test_a_seeded_random_search_proposes_the_pinned_values(tmp_path):
    assert proposals(tmp_path / "s", "random") == GIVEN + [
        ("erk", 0.002701267249621569, 0.6713608249438168),
        ("lamp", 0.014566459015713455, 1.344178956394483),
        ("uniform", 0.00038910320878983147, 0.5091518064267417),
        ("uniform", 0.0006159502865621248, 1.1519441695957204),
        ("erk", 0.001341040599870698, 0.6695751218585231),
        ("erk", 0.00021043722643535167, 0.8841146616349991),
    ]


@same_gaussian_process
def test_a_repeated_bayesian_proposal_is_replaced_by_the_pinned_random_one(tmp_path):
    def one(hp):  # the best value is the top of the range: KerasTuner proposes it again and again
        hp.Float("learning_rate", 1e-4, 3e-2, sampling="log", default=1e-3)

    seen = []

    def train(batch):
        seen.extend(p.values["learning_rate"] for p in batch)
        return [(p.values["learning_rate"], {}) for p in batch]

    tuning.search_many([tuning.SearchJob(str(tmp_path / "s"), one, "bayesian", 8, seed=10_000, batch=2)], train)
    assert close(seen, [0.001, 0.002701267249621569, 0.0007630863647291937, 0.0061815208163922344,
                        0.0019743135867038675, 0.017936724522573895, 0.009175828492056642, 0.030000000000000002])
