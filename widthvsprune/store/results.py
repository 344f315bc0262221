"""A study's results folder as the planner sees it: which study it holds, what its runs' records say.

No framework is imported here. :func:`survey` completes the plan with what
the store holds (a plan's later runs are known only once earlier ones are
settled), and checks every record it reads (:func:`widthvsprune.store.records.read_run`).
"""

import dataclasses
import hashlib
import pathlib

from widthvsprune import keys
from widthvsprune.errors import ResultsError, near_path
from widthvsprune.plan import planner
from widthvsprune.status import RunStatus
from widthvsprune.store import files, paths, records
from widthvsprune.study import study_from_dict

_COVERAGE = ("sparsities", "seeds", "arms")  # study.json covers the union of these


def load_study(root, derive=True):
    """The study a results folder describes (its ``study.json``).

    Args:
        root: the folder.
        derive: derive a ``model:PATH`` family from its file (which imports
            Keras); ``False`` takes what the records say of it instead, all
            that ``status`` and the reports need.

    Raises:
        ResultsError: if the folder holds no readable ``study.json``.
    """
    path = paths.study_json(root)
    try:
        data = files.read_json(path)
    except FileNotFoundError:
        raise ResultsError(
            f"DIR: Expected a study results folder holding study.json. Received: DIR={str(root)!r}"
            + _folder_hint(root)) from None
    except (OSError, ValueError) as error:
        raise ResultsError(
            f"DIR: Expected a readable study.json. Received: DIR={str(root)!r}, whose study.json is unreadable "
            f"({type(error).__name__})"
        ) from None
    _know_family(root, data, derive)
    return study_from_dict(data)


def _know_family(root, data, derive=True):
    """Registers a stand-in for the study's family when this process cannot build it
    (:func:`widthvsprune.families.recorded_family`): its reports need only what the records hold."""
    from widthvsprune import data as datasets
    from widthvsprune import families
    from widthvsprune.errors import StudyError

    read = []  # the run configurations, read on first need and once

    def recorded(field, name, wanted):
        if not read:
            read.append(_recorded_configs(root))
        return _recorded_value(read[0], field, name, wanted)

    dataset = data.get("dataset")
    fingerprint = recorded("dataset", dataset, "fingerprint") if isinstance(dataset, str) and \
        not datasets.registered(dataset) else None
    if fingerprint:
        datasets.recorded_dataset(dataset, fingerprint)
    if datasets.is_recorded(dataset):
        datasets.use_materialised(root, dataset)  # no loader here: the arrays a run wrote into the folder
    name = data.get("family")
    if not isinstance(name, str) or not data.get("widths"):
        return
    recorded_only = not derive and name.startswith(families.MODEL_PREFIX) and name not in families.family_names() \
        and recorded("family", name, "family_config")
    try:
        if not recorded_only and families.known(name):
            return
    except (StudyError, ValueError):  # a model:PATH file that is gone: the records still describe its runs
        pass
    # A family with batch normalization hashes how it was evaluated ("batchnorm" beside "family"): the records say.
    batchnorm = recorded("family", name, "batchnorm") is not None
    pretrained = recorded("family", name, "pretrained") or {}  # the weights a study started from
    families.recorded_family(name, data["widths"], recorded("family", name, "family_config"), batchnorm,
                             pretrained.get("weights"))


def _recorded_configs(root):
    """Every run configuration (``config.json``) of ``root`` that reads, run folders' first."""
    runs, out = paths.runs_dir(root), []
    for path in sorted(runs.glob("*/config.json")) + sorted(runs.glob("*/seed-*/config.json")):
        try:
            out.append(files.read_json(path))
        except (OSError, ValueError):
            continue
    return out


def _recorded_value(configs, field, name, wanted):
    """The ``wanted`` value the run configurations ``configs`` record beside ``field == name`` (``None`` if none):
    a family's ``family_config``, a registered dataset's ``fingerprint``."""
    def find(config):
        if isinstance(config, dict):
            if config.get(field) == name and wanted in config:
                return config[wanted]
            for value in config.values():
                found = find(value)
                if found:
                    return found
        return None

    for config in configs:
        found = find(config)
        if found:
            return found
    return None


def is_study_folder(path):
    return paths.study_json(path).is_file()


def _folder_hint(root):
    """Where the study folders are: inside ``root``, or beside it under a close name."""
    root = pathlib.Path(root)
    inside = sorted(str(p) for p in root.iterdir() if is_study_folder(p)) if root.is_dir() else []
    if len(inside) == 1:
        return f"; did you mean {inside[0]!r}?"
    if inside:
        return f"; it holds the study folders {inside}"
    return near_path(root, is_study_folder)


def record_study(root, study):
    """Records that ``study`` ran in ``root``; returns the study the folder now describes.

    Every study that ran is kept in ``history/``. ``study.json`` describes the
    union of the runs: when the study differs from the one already recorded
    only in its sparsities, seeds or arms (a ``run --set sparsities=[0.5]``,
    say), ``study.json`` covers both, so that no finished run disappears from
    the reports. A study that differs in anything else is refused before
    training (:func:`conflict`); it never replaces ``study.json``.
    """
    data = study.to_dict()
    digest = hashlib.sha256(keys.canonical(data).encode()).hexdigest()[:12]
    files.write_json(paths.history_json(root, digest), data)
    try:
        current = load_study(root)
    except ResultsError:
        current = None
    if current is not None and _without_coverage(current) == _without_coverage(study):
        order = {name: i for i, name in enumerate(current.arms + study.arms)}
        study = dataclasses.replace(
            study,
            sparsities=tuple(sorted(set(current.sparsities) | set(study.sparsities))),
            seeds=tuple(sorted(set(current.seeds) | set(study.seeds))),
            arms=tuple(sorted(set(current.arms) | set(study.arms), key=order.get)),
        )
    elif current is not None:
        raise ResultsError(conflict(root, study))
    files.write_json(paths.study_json(root), study.to_dict())
    return study


def _without_coverage(study):
    return {k: v for k, v in study.to_dict().items() if k not in _COVERAGE}


def _flat(data, prefix=""):
    out = {}
    for name, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def conflict(root, study):
    """The one line refusing ``study`` in ``root`` when the folder holds another study; ``""`` otherwise.

    A folder holds one study: a study that differs from its ``study.json`` in
    anything but its sparsities, seeds and arms (which ``study.json`` then
    covers together) belongs in another folder, under another name or
    ``--out``.
    """
    try:
        current = load_study(root)
    except ResultsError:
        return ""
    there, here = _flat(_without_coverage(current)), _flat(_without_coverage(study))
    differ = [name for name in sorted(set(there) | set(here)) if there.get(name) != here.get(name)]
    if not differ:
        return ""
    shown = ", ".join(f"{name} ({there.get(name)!r} there, {here.get(name)!r} here)" for name in differ)
    return (f"study: Expected the study that {str(paths.study_json(root))!r} records, or another name "
            f"(--set name=...) or another --out for a different study. Received: a study {study.name!r} that "
            f"differs in {shown}")


def run_config(study, run):
    """What a run's ``config.json`` holds: its resolved configuration, seed and study."""
    return {**run.config, "seed": int(run.seed), "study": study.name}


@dataclasses.dataclass
class Survey:
    """A plan completed with what the store holds.

    Attributes:
        plan: the :class:`widthvsprune.planner.Plan`.
        states: ``(key, seed) -> RunState`` of every planned run.
        searches: ``key -> result`` of every finished search.
        search_problems: ``key -> problem`` of searches whose result is unreadable.
        trials_done: ``key -> trials finished`` of the searches not finished yet.
    """

    plan: planner.Plan
    states: dict
    searches: dict
    search_problems: dict
    trials_done: dict = dataclasses.field(default_factory=dict)

    def records(self):
        """The records (done or failed) of every planned run, in plan order."""
        return [self.states[r.id].record for r in self.plan.runs if self.states[r.id].record is not None]


def survey(study, root, settled=None, cache=None):
    """Plans ``study`` from what its results folder holds.

    Args:
        study: the study.
        root: its results folder.
        settled: ``f(run, state) -> bool``: whether a run counts as settled
            for planning (its budget and later runs become known). By default
            a run is settled once it is done or failed.
        cache: a dict kept between calls, to skip re-checking the files of
            runs found done before whose record has not changed since.

    Returns:
        A :class:`Survey`.
    """
    settled = settled or (lambda run, state: state.status in (RunStatus.OK, RunStatus.FAILED))
    cache = {} if cache is None else cache
    states, found, searches, problems = {}, {}, {}, {}
    while True:
        plan = planner.plan(study, found, searches)
        changed = False
        for run in plan.runs:
            if run.id not in states:
                states[run.id] = _read(paths.seed_dir(root, run.key, run.seed), run_config(study, run), cache)
            if run.id not in found and states[run.id].record is not None and settled(run, states[run.id]):
                found[run.id] = states[run.id].record
                changed = True
        for search in plan.searches:
            if search.key not in searches and search.key not in problems:
                result, problem = records.read_search(root, search.key)
                if result is not None:
                    searches[search.key] = result
                    changed = True
                elif problem:
                    problems[search.key] = problem
        if not changed:
            started = {s.key: records.trials_done(root, s.key) for s in plan.searches
                       if s.trials and s.key not in searches}
            return Survey(plan, states, searches, problems, started)


def _read(folder, config, cache):
    path = paths.record_json(folder)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    hit = cache.get(folder)
    if hit is not None and hit[0] == stamp and stamp is not None:
        return hit[1]
    state = records.read_run(folder, config)
    if state.done:
        cache[folder] = (stamp, state)
    return state
