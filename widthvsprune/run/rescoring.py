"""A search's best trials trained again on a second seed before it chooses (``Tuning.rescore``).

A search scores each trial once, on the validation split, with the search
seed. The best of several noisy scores is as often the luckiest trial as the
best one, and its configuration then lands under the recipe on the
evaluation seeds. So once the oracle is done, the ``rescore`` best trials of
every search (the same number for every arm) are trained again with
:attr:`widthvsprune.Study.rescore_seed`, and the search chooses the best mean
of the two seeds' scores (:func:`choose`). The second scores are kept in the
search's folder (``rescore.json``, written once they are all in), so a
resumed search does not train them again.
"""

import dataclasses
import math
import pathlib

from widthvsprune import store
from widthvsprune.run import tuning

RESCORE_JSON = "rescore.json"


def choose(ranked, again):
    """The chosen trial among the re-scored ones: the best mean of its two scores.

    Args:
        ranked: the search's trials, best first (``[{"trial", "values", "score"}, ...]``).
        again: ``{trial id: second score}`` of the first trials of ``ranked``.

    Returns:
        ``(entry, mean)``: the chosen entry of ``ranked`` and its mean score. An
        equal mean goes to the trial ranked first on the search seed.

    Example:

    ```python
    ranked = [{"trial": "3", "score": 0.92}, {"trial": "0", "score": 0.90}]
    choose(ranked, {"3": 0.84, "0": 0.91})  # ({"trial": "0", ...}, 0.905)
    ```
    """
    scored = [(entry, (entry["score"] + _finite(again[entry["trial"]])) / 2) for entry in ranked
              if entry["trial"] in again]
    if not scored:
        return ranked[0], ranked[0]["score"]
    best = max(range(len(scored)), key=lambda i: (scored[i][1], -i))
    return scored[best]


def _finite(score):
    return float(score) if score is not None and math.isfinite(score) else 0.0


def second_study(study):
    """The study with its searches' seed moved to :attr:`~widthvsprune.Study.rescore_seed` (what trials of the
    second seed are built from)."""
    return dataclasses.replace(study, tuning=dataclasses.replace(study.tuning, seed=study.rescore_seed))


def rescore(study, jobs, found, train, on_trial=None):
    """Trains the best trials of each search again on the second seed and chooses among them (:func:`choose`).

    Args:
        study: the study.
        jobs: the searches' :class:`~widthvsprune.run.tuning.SearchJob` s.
        found: their results (:func:`widthvsprune.run.tuning.search_many`), with ``ranked`` trials.
        train: ``f(study, proposals) -> [(score, info), ...]`` trains proposals of ``study`` (the second seed's).
        on_trial: optional ``f(job, trial_id, values, score, info)`` per second score.

    Returns:
        The results: the chosen trial's ``values``, its mean ``score``, the
        trainings and their cost added, and ``rescored`` (each re-scored
        trial's id, values and both scores).
    """
    count = study.tuning.rescored
    if not count:
        return found
    kept, proposals = {}, []
    for i, (job, result) in enumerate(zip(jobs, found)):
        top = result["ranked"][:count]
        saved = store.read_json(_path(job)) if _path(job).exists() else {}
        if saved.get("seed") == study.rescore_seed and {e["trial"] for e in top} <= set(saved.get("scores", {})):
            kept[i] = saved
            continue
        proposals += [tuning.Proposal(i, dict(entry["values"]), entry["trial"], False) for entry in top]
    trained = train(second_study(study), proposals) if proposals else []
    fresh = {}
    for proposal, (score, info) in zip(proposals, trained):
        entry = fresh.setdefault(proposal.job, {"seed": study.rescore_seed, "scores": {}, "epochs": 0.0,
                                                "seconds": 0.0})
        entry["scores"][proposal.trial] = _finite(score)
        entry["epochs"] += float(info.get("epochs", 0.0))
        entry["seconds"] += float(info.get("seconds", 0.0))
        if on_trial is not None:
            on_trial(jobs[proposal.job], proposal.trial, proposal.values, _finite(score), info)
    for i, entry in fresh.items():
        store.write_json(_path(jobs[i]), entry)
        kept[i] = entry
    out = []
    for i, result in enumerate(found):
        entry = kept.get(i)
        if entry is None:
            out.append(result)
            continue
        chosen, mean = choose(result["ranked"], entry["scores"])
        rescored = [{"trial": e["trial"], "values": e["values"], "scores": [e["score"], entry["scores"][e["trial"]]]}
                    for e in result["ranked"][:count] if e["trial"] in entry["scores"]]
        out.append({**result, "values": dict(chosen["values"]), "score": float(mean),
                    "trials": result["trials"] + len(rescored),
                    "epochs": float(result.get("epochs", 0.0)) + entry["epochs"],
                    "seconds": float(result.get("seconds", 0.0)) + entry["seconds"], "rescored": rescored})
    return out


def _path(job):
    return pathlib.Path(job.directory, RESCORE_JSON)
