"""The planner: every run and search a study has, with keys, configurations and dependencies.

Pure: no framework, no I/O. Given a study and the records found so far, it
returns a :class:`Plan`. The runner, the reports, ``status``, ``--dry-run``,
the progress totals and the benchmark all ask it; nothing else derives run
lists or reads configurations out of folder names.

Every arm plans its own part (:meth:`widthvsprune.arms.base.Arm.plan`), in
order, through a :class:`Builder`; what an arm adds depends on what earlier
arms' records and searches say (the narrow budget on the pruned records, the
pruned runs on the baseline search). Both arms of the question get the same
treatment: each is tuned by a search with the same oracle and number of
trials, on the validation split, with a search seed that is never an
evaluation seed; the chosen configurations are then trained once per
evaluation seed. With ``tuning.controls``, the untuned arms (the recipes as
written) are trained too.

Stages (a stage starts once every run of the earlier stages is settled):

0. the baseline search; the recipe's baselines;
1. the tuned baselines;
2. each size point's pruned search; the untuned pruned runs;
3. the tuned pruned runs;
4. searches whose budget or shape is the pruned runs' (narrow, sparse from scratch);
5. their runs;
6. the tuned narrow runs whose search chose the control's model (linked to it, not trained).

A search may also be listed *ahead* of its stage (:attr:`Plan.ahead`): the
narrow search of a size point whose pruned runs have not all trained, at the
budget they are expected to give (tfmot's kept counts on the baseline's
layers, where every allocation they may have agrees or the pruned search has
chosen: :func:`widthvsprune.arms.pruned.expected_budget`).
Nothing waits for it; a process with nothing else to do may run it. Its key
holds that budget, so once the pruned runs are settled the plan names the same
search (its result found, not searched again) where the guess held, and
another one where it did not; results never depend on whether, or by which
process, a search ran ahead.
"""

import dataclasses
from typing import Optional, Tuple

from widthvsprune import arms, keys


@dataclasses.dataclass(frozen=True)
class Run:
    """One model to train (one seed of one configuration).

    Attributes:
        arm: the arm's name.
        tuning: ``"tuned"`` (the configuration a search chose) or ``"untuned"``.
        target: the size point's target sparsity (0 for the baseline).
        seed: its training seed.
        key: its configuration's key (the folder ``runs/<key>/seed-<seed>``).
        config: its resolved configuration (what ``config.json`` holds).
        needs: ``(key, seed)`` of the runs whose results it starts from.
        search: the key of the search that chose its configuration, if any.
        stage: its stage (see the module docstring).
        role: ``"eval"``, ``"search"`` for a model the searches start from
            (trained at the search seed, not evaluated), or ``"bracket"`` for
            an evaluated narrow model above an underfilled budget (beside the
            size point's model within it).
    """

    arm: str
    tuning: str
    target: float
    seed: int
    key: str
    config: dict
    needs: Tuple[Tuple[str, int], ...] = ()
    search: Optional[str] = None
    stage: int = 0
    role: str = "eval"

    @property
    def id(self):
        return (self.key, self.seed)

    @property
    def widths(self):
        return arms.get(self.arm).widths(self)

    @property
    def label(self):
        return arms.get(self.arm).label(self)


@dataclasses.dataclass(frozen=True)
class Search:
    """One search: an arm's configuration at one size point, chosen on the validation split.

    Attributes:
        arm: the arm it tunes.
        tuning: ``"tuned"``, or ``"untuned"`` for a control whose "search"
            has no trials (the narrow control solves its widths only).
        target: the size point (0 for the baseline's).
        key: its key; the runs it chooses usually share it.
        config: what its key hashes.
        budget: the narrow arm's parameter budget.
        needs: the runs that must be settled first.
        stage: its stage.
        trials: trials it trains (0 for a control).
    """

    arm: str
    tuning: str
    target: float
    key: str
    config: dict
    budget: Optional[int] = None
    needs: Tuple[Tuple[str, int], ...] = ()
    stage: int = 0
    trials: int = 0

    @property
    def label(self):
        return arms.get(self.arm).search_label(self)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a study trains, as far as the records found so far tell.

    Attributes:
        runs: every run whose configuration is known.
        searches: every search whose configuration is known.
        skipped: ``(arm, target) -> Skip`` for size points where an arm has no model.
        max_trainings: models the whole study trains at most (trials included), with the runs planned beyond
            the arms' own bounds once earlier results called for them (:meth:`Builder.add_runs`).
        twins: ``run id -> run id`` of the runs that train the same model as a run of an earlier stage
            (:func:`twins`): they are not trained, their records are that run's.
        ahead: searches that may run before their inputs are known, at a guess of them (see the module docstring);
            not in ``searches`` and not counted in ``max_trainings`` until the plan names them there.
    """

    study: object
    runs: Tuple[Run, ...]
    searches: Tuple[Search, ...]
    skipped: dict
    max_trainings: int
    twins: dict = dataclasses.field(default_factory=dict)
    ahead: Tuple[Search, ...] = ()

    def runs_of(self, arm, target=None, tuning=None):
        return matching(self.runs, arm=arm, target=target, tuning=tuning)

    def skipped_for(self, arm):
        """``target -> Skip`` of the size points where ``arm`` has no model."""
        return {target: skip for (name, target), skip in self.skipped.items() if name == str(arm)}

    def left(self, run_settled, search_settled):
        """Models still to train (an upper bound, search trials included).

        Args:
            run_settled: ``f(run) -> bool``.
            search_settled: ``f(search) -> trials`` already trained by it
                (all of them once it is settled).
        """
        done = sum(1 for r in self.runs if run_settled(r))
        done += sum(search_settled(s) for s in self.searches)
        done += sum(arms.get(arm).per_point(self.study) for arm, _ in self.skipped)
        return max(0, self.max_trainings - done)


class Builder:
    """What the arms add to a plan, in order (handed to :meth:`widthvsprune.arms.base.Arm.plan`).

    Attributes:
        study: the study.
        records: ``(key, seed) -> record`` of the settled runs.
        searches: ``key -> result`` of the finished searches.
        offered: what an arm offers later arms, by name (:meth:`offer`, :meth:`need`; the baseline arm's
            :class:`~widthvsprune.arms.baseline.Baselines`), by arm name.
    """

    def __init__(self, study, records, searches):
        self.study, self.records, self.searches = study, records, searches
        self.runs, self.found, self.skipped, self.offered, self.ahead = [], [], {}, {}, []
        self.extra = 0

    def add_runs(self, arm, tuning, target, key, config, stage, needs=None, search=None, seeds=None, role="eval",
                 extra=False):
        """Adds one run per evaluation seed (or per seed of ``seeds``); ``needs(seed)`` gives each one's needs.

        ``role`` is the runs' :attr:`Run.role`; ``extra`` says that they are
        not counted in the arm's :meth:`~widthvsprune.arms.base.Arm.max_trainings`
        (runs planned only when earlier results call for them), so the plan
        adds them to its total.
        """
        seeds = self.study.seeds if seeds is None else seeds
        made = [Run(arm, tuning, float(target), s, key, config, needs(s) if needs else (), search, stage, role)
                for s in seeds]
        self.runs.extend(made)
        if extra:
            self.extra += len(made)
        return made

    def add_helper(self, arm, tuning, key, config, stage, search=None):
        """Adds a run at the search seed that the searches start from (not evaluated)."""
        run = Run(arm, tuning, 0.0, self.study.search_seed, key, config, (), search, stage, "search")
        self.runs.append(run)
        return run

    def add_search(self, arm, tuning, target, config, stage, prefix, budget=None, needs=(), trials=None):
        """Adds a search; returns ``(search, result)`` (``result`` is ``None`` until it finished)."""
        search = self._search(arm, tuning, target, config, stage, prefix, budget, needs, trials)
        self.found.append(search)
        return search, self.searches.get(search.key)

    def add_ahead(self, arm, tuning, target, config, stage, prefix, budget=None, trials=None):
        """Lists a search that may run ahead of its stage, at a guess of its inputs (:attr:`Plan.ahead`); nothing
        once it finished."""
        search = self._search(arm, tuning, target, config, stage, prefix, budget, (), trials)
        if search.key not in self.searches:
            self.ahead.append(search)

    def _search(self, arm, tuning, target, config, stage, prefix, budget, needs, trials):
        trials = self.study.tuning.trainings if trials is None else trials
        return Search(arm, tuning, float(target), keys.run_key(config, prefix), config, budget, tuple(needs), stage,
                      trials)

    def runs_of(self, arm, target=None, tuning=None):
        return matching(self.runs, arm=arm, target=target, tuning=tuning)

    def offer(self, name, value):
        """Offers ``value`` to the arms planned later, under ``name`` (:mod:`widthvsprune.arms.shared` names them)."""
        self.offered[name] = value

    def need(self, name):
        """What an arm planned earlier offered under ``name``.

        Raises:
            KeyError: naming what was offered, when nothing was offered under ``name`` (the arm that offers it is
                not in the study, or plans later: its ``order`` is higher).
        """
        if name not in self.offered:
            raise KeyError(f"Expected an arm planned earlier to offer {name!r} (Arm.order, Study.arms). "
                           f"Received: offers {sorted(self.offered)}")
        return self.offered[name]

    def skip(self, arm, target, why):
        """Records that ``arm`` has no model at ``target`` (a :class:`~widthvsprune.status.Skip`)."""
        self.skipped[arm, float(target)] = why


def untagged(config):
    """A run's configuration without its tuning labels, at any depth (``"tuning"``: ``tuned`` or ``untuned``, its
    own and those of the runs it starts from): what the model it trains depends on."""
    if isinstance(config, dict):
        return {k: untagged(v) for k, v in config.items() if k != "tuning"}
    if isinstance(config, list):
        return [untagged(v) for v in config]
    return config


def twins(runs):
    """The runs that train exactly the model a run of an earlier stage trains: ``run id -> that run's id``.

    Two runs of one arm at one seed whose configurations differ only in their
    tuning labels (:func:`untagged`), and in what the arm says does not make
    the model (:meth:`~widthvsprune.arms.base.Arm.model_fields`), train the
    same model: a search that chose its recipe as written makes the tuned run
    the untuned control's twin, and a pruned run that starts from such a
    baseline the twin of the one that starts from the recipe's. Their keys
    differ (the key policy does not change), but the later one is not trained:
    its record, weights and predictions are the earlier one's
    (:meth:`widthvsprune.run.trainer.Trainer.link`).
    A function of the plan alone, so it holds however the study is run.
    """
    first, out = {}, {}
    for run in sorted(runs, key=lambda r: (r.stage, r.id)):
        fields = untagged(arms.get(run.arm).model_fields(run.config))
        original = first.setdefault((run.arm, run.seed, keys.run_key(fields, run.arm)), run)
        if original.stage < run.stage:
            out[run.id] = original.id
    return out


def matching(items, **wanted):
    """The runs or searches whose attributes equal every given value (``None`` matches anything)."""
    return [item for item in items if all(v is None or getattr(item, k) == v for k, v in wanted.items())]


def max_trainings(study):
    """Models the study trains when nothing is done yet (search trials included)."""
    return sum(arm.max_trainings(study) for arm in arms.of(study))


def plan(study, records=None, searches=None):
    """Every run and search of ``study``, given what is settled so far.

    Args:
        study: a :class:`widthvsprune.Study`.
        records: ``(key, seed) -> record`` of the runs that are settled (done,
            or failed for good); runs not in it are still to train.
        searches: ``key -> result`` of the searches that finished.

    Returns:
        A :class:`Plan`.
    """
    builder = Builder(study, records or {}, searches or {})
    for arm in arms.of(study):
        arm.plan(study, builder)
    return Plan(study, tuple(builder.runs), tuple(builder.found), builder.skipped,
                max_trainings(study) + builder.extra, twins(builder.runs), tuple(builder.ahead))
