"""Packs: which runs train together, a function of the plan alone.

An engine trains the models of a pack together (the jax engine in one
compiled program of the pack's widest shape, the tf_keras engine in one
``fit``), and a model's float sums can differ in the last bit with the models
beside it. So that a study gives the same records however it is run
(uninterrupted, killed and resumed, by one process or several, locally or on
Ray), which runs share a pack depends on the plan only: a stage's runs are
grouped by how they train (their arm's :class:`~widthvsprune.arms.base.Fit`),
ordered by run id, and each group is cut into :func:`chunks` of at most
:data:`PACK_MODELS` runs. A process claims whole packs; a pack of which some
runs are recorded trains again whole, and only its missing runs are
recorded. A search's trials follow the same rule: each round of one search is
its own pack (:func:`chunks` of its trials in trial order).
"""

import math

#: Most models in one pack. Part of what a run's last float bits depend on: changing it may change them.
PACK_MODELS = 16


def chunks(items, size=PACK_MODELS):
    """``items`` cut into the fewest consecutive parts of at most ``size``, as even as can be (longer ones first).

    A function of ``len(items)`` and ``size`` only: 20 items in parts of at
    most 16 give parts of 10 and 10.

    Args:
        items: a sequence.
        size: most items per part (at least 1).

    Returns:
        A list of tuples; empty when ``items`` is.

    Raises:
        ValueError: if ``size`` is below 1.
    """
    items = tuple(items)
    if int(size) < 1:
        raise ValueError(f"Expected size to be at least 1. Received: size={size!r}")
    if not items:
        return []
    parts = math.ceil(len(items) / int(size))
    bounds = [len(items) * i // parts for i in range(parts + 1)]
    bounds = [len(items) - b for b in reversed(bounds)]  # the longer parts first
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


def stage_packs(runs, fit_of, size=PACK_MODELS):
    """The packs of one stage's runs.

    Args:
        runs: every run of the stage (recorded or not: a pack's members do not
            depend on what is done).
        fit_of: ``f(run) -> Fit``, how the run trains (runs of one fit may
            share a pack).
        size: most runs per pack.

    Returns:
        A list of tuples of runs: the runs of one fit, in run id order, cut by
        :func:`chunks`; the packs in order of their first run's id.
    """
    groups = {}
    for run in sorted(runs, key=lambda r: r.id):
        groups.setdefault(fit_of(run), []).append(run)
    packs = [pack for group in groups.values() for pack in chunks(group, size)]
    return sorted(packs, key=lambda pack: pack[0].id)
