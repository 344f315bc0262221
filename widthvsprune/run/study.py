"""Running a study: checks before training, the processes that share it, and the reports after."""

import os
import sys
import time
import uuid

from widthvsprune import arms, data, engines, executors, families, store
from widthvsprune.errors import DataError, StudyError, WidthVsPruneError, problem
from widthvsprune.families import budgets
from widthvsprune.run import fresh_process, processes, progress
from widthvsprune.run.processes import Interrupted
from widthvsprune.run.scheduler import Runner
from widthvsprune.store import results
from widthvsprune.study import loading, study_from_dict


def preflight(study, out, load_data=True):
    """Loads the data and checks everything that can be checked before training.

    Returns:
        The dataset's :class:`widthvsprune.data.Splits` (``None`` without ``load_data``).

    Raises:
        StudyError: listing every problem, one line each.
    """

    problems = list(study.problems()) + store.check_writable(out) + engines.problems(study.engine)
    if not study.name:
        problems.append(problem("name", "a non-empty study name", study.name))
    if families.is_recorded(study.family):  # read from a results folder; its builder is not in this process
        raise StudyError(families.not_here(study.family))
    if study.name:
        clash = results.conflict(store.study_dir(out, study.name), study)  # one study per folder
        if clash:
            raise StudyError(clash)
    splits = None
    try:
        splits = load_splits(study) if load_data else None
    except DataError as error:
        problems += str(error).splitlines()
    if splits is not None:
        problems += _shape_problems(study, splits)
    if problems:
        raise StudyError(problems)
    return splits


def load_splits(study):
    """The study's dataset as its family takes it: a family derived from a model whose input has a channel axis
    of 1 that the data lacks (images of shape ``(28, 28)`` for a model built on ``(28, 28, 1)``) gets it added,
    as the shipped image families add it themselves.

    Raises:
        DataError: as :func:`widthvsprune.data.load`.
    """
    import dataclasses

    import numpy as np

    splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
    model_input = getattr(families.get_family(study.family).build, "model_input", None)
    if model_input is not None and len(model_input) == len(splits.input_shape) + 1 and model_input[-1] == 1:
        splits = dataclasses.replace(splits, **{name: np.expand_dims(getattr(splits, name), -1)
                                                for name in ("x_train", "x_val", "x_test")})
    return splits


def notes(study, splits):
    """What the study's recipes will do that a user should know before training, one line each (a pruning schedule
    that updates its masks only a few times, say)."""
    return [line for arm in arms.of(study) for line in arm.notes(study, len(splits.x_train))]


def _shape_problems(study, splits, count=None):
    family, shape, out = families.get_family(study.family), splits.input_shape, []
    if family.count_params is None and count is None:
        return []  # counted by building, once the engine is loaded (run_study checks it then)
    exact = budgets.counter(family, shape, splits.num_classes, count)
    params = exact(study.widths)
    if params == budgets.INFEASIBLE:  # the wide model itself cannot be built on this input
        return [f"family: Expected a family that accepts inputs of shape {shape}. "
                f"Received: family={study.family!r} ({exact.errors[tuple(study.widths)]})"]
    side = family.min_input_side
    if len(shape) >= 2 and min(shape[:2]) < side:
        out.append(f"family: Expected inputs of at least {side}x{side} for {study.family!r}. "
                   f"Received: family={study.family!r} with dataset={study.dataset!r} of shape {shape}")
    elif params <= 0:
        out.append(problem("widths", "a model with parameters", study.widths))
    n_train = len(splits.x_train)
    for name in ("baseline", "finetune"):
        recipe = getattr(study, name)
        if recipe.batch_size > n_train:
            out.append(f"{name}.batch_size: Expected at most the {n_train} training examples. "
                       f"Received: {name}.batch_size={recipe.batch_size}")
    return out


def pretrained_problems(study, splits, count):
    """Whether the trained weights a study starts from (:attr:`Study.pretrained`) fit its model on its data: as many
    parameters as the family's model at the study's widths, input shape and number of classes (one line if not).

    Args:
        count: ``f(family, widths, input_shape, num_classes)``, an engine's ``count_params``.
    """
    if not study.pretrained:
        return []
    weights = families.get_family(study.family).weights
    held = sum(int(getattr(w, "size", 0)) for w in weights)
    try:
        built = int(count(study.family, tuple(study.widths), splits.input_shape, splits.num_classes))
    except Exception as error:  # the model cannot be built on this data: named in one line
        built = f"none ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    if held == built:
        return []
    return [f"pretrained: Expected trained weights that fit family {study.family!r} on dataset {study.dataset!r} "
            f"(inputs {splits.input_shape}, {splits.num_classes} classes: {built} parameters at widths "
            f"{tuple(study.widths)}). Received: weights of {held} parameters"]


def default_workers(engine):
    """Training processes to use: one per CPU core (at most 4); one when a GPU is visible."""
    if engine is None or engine.gpus():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _complete(study, root):
    """Whether nothing is left to train (failed runs are tried again by a new ``run``)."""
    probe = Runner(study, root, None, None, progress.silent())
    return probe.pending(probe.survey()) is None


def _helper(study_dict, study_file, out, verbose, workers, session, splits, queue, index):
    """A helper training process: shares the study with its parent through the run locks, reports through
    ``queue`` to the parent's display. ``splits``: the parent's (``None``: the helper loads the data itself)."""
    processes.die_with_parent()
    if verbose:
        os.environ["WIDTHVSPRUNE_VERBOSE"] = "1"
    reporter, runner, code = progress.Reporter(queue.put, index), None, 0
    try:
        if study_file:
            loading.load_study(study_file)  # registers the families the file defines
        # A registered dataset, or arrays given to the Study: the arrays the first process wrote into the folder.
        data.use_materialised(store.study_dir(out, study_dict["name"]), study_dict["dataset"])
        study = study_from_dict(study_dict)
        executor = executors.create("local", study.engine, verbose)
        executor.engine.limit_threads(workers)
        root = store.study_dir(out, study.name)
        splits = load_splits(study) if splits is None else splits
        runner = Runner(study, root, splits, executor, reporter, verbose=verbose, workers=workers, session=session)
        with processes.single_threaded_blas():
            result = runner.run()
        code = 1 if result.failed else 0
    except WidthVsPruneError as error:  # a full disk, say: the parent reports it too
        reporter.note(f"error: {str(error).splitlines()[0]}")
        code = 1
    except Exception as error:  # the parent goes on alone and finishes the study
        reporter.note(f"stopped: {type(error).__name__}: {error}")
        code = 1
    if runner is not None:
        reporter.timing(runner.watch.parts)
    processes.exit_now(code, queues=(queue,))


def run_study(study, out="results", force=False, verbose=False, stream=None, workers=None, study_file=None,
              executor="local", **options):
    """Trains every run of ``study`` that is not done yet and writes the tables.

    Args:
        study: a :class:`widthvsprune.Study`.
        out: the results root; the study's folder is ``<out>/<study.name>``.
        force: retrain runs that are already done.
        verbose: show the frameworks' and KerasTuner's own output.
        stream: where progress lines go (standard output by default).
        workers: training processes on this machine (this one included), for
            an executor that shares a study between processes (``local``);
            ``None`` for :func:`default_workers`. Helpers share the work
            through the run locks, exactly as separately started runners do.
        study_file: the study file, so helpers can register the families it
            defines; without it, a study of an unshipped family uses one process.
        executor: a registered executor (:mod:`widthvsprune.executors`):
            ``"local"`` (this machine's processes) or ``"ray"`` (packs as tasks
            on a Ray cluster; needs the ``ray`` extra).
        **options: the executor's options (``ray``: ``address``,
            ``cpus_per_pack``, ``gpus_per_pack``).

    Returns:
        A :class:`widthvsprune.run.scheduler.StudyResult`.

    Raises:
        StudyError: if the study, its data or the executor's options are
            invalid (before any training).
        Interrupted: on Ctrl-C, once the helpers are stopped.
        DiskFullError: if the results folder's device is full.
    """
    started = time.perf_counter()
    families.forget_recorded(study.family)  # a report read earlier in this process: the real family trains
    engines.prefer_jax_backend()
    study = study.resolved()
    conflict = engines.keras_backend_conflict(study.engine)
    if conflict and executor == "local":  # Keras 3 runs another backend here: the study runs in a fresh process
        preflight(study, out, load_data=False)
        options = dict(options, force=force, verbose=verbose, workers=workers, executor=executor)
        pickled = fresh_process.portable_families(study.family, study_file)
        return fresh_process.call_in_fresh_process(
            _study_elsewhere, (study.to_dict(), pickled, study_file and str(study_file), str(out), options),
            {"KERAS_BACKEND": "jax"}, stream)
    splits = preflight(study, out)
    for line in notes(study, splits):
        print(line, file=stream or sys.stdout)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise StudyError(problem("workers", "an integer >= 1", workers))
    if not executors.executor_class(executor).processes and workers not in (None, 1):
        raise StudyError(f"--workers: Expected no --workers with --executor {executor} (its slots share the work). "
                         f"Received: --workers={workers}")
    if not executors.executor_class(executor).processes and not _rebuilt_anywhere(study.family):
        raise StudyError(f"family: Expected a shipped family or family='{families.MODEL_PREFIX}PATH' with --executor "
                         f"{executor} (its workers import no study file, so they cannot rebuild a family, or the "
                         f"layers it registers, that a study file defines). Received: family={study.family!r}")
    trainer = executors.create(executor, study.engine, verbose, **options)
    try:
        return _run(study, out, splits, trainer, force, verbose, stream, workers, study_file, started)
    finally:
        trainer.close()


#: The most bytes of a dataset's splits the first process hands its helpers (more: each helper loads them itself).
SPLITS_TO_HELPERS = 64 << 20


def _rebuilt_anywhere(name):
    """Whether any process rebuilds family ``name`` by its name alone: a shipped family, or a saved model's."""
    return name in families.SHIPPED or str(name).startswith(families.MODEL_PREFIX)


def _run(study, out, splits, trainer, force, verbose, stream, workers, study_file, started):
    from widthvsprune.analysis import report

    if families.get_family(study.family).count_params is None:
        problems = _shape_problems(study, splits, trainer.count_params)
        if problems:
            raise StudyError(problems)
    problems = pretrained_problems(study, splits, trainer.count_params)
    if problems:
        raise StudyError(problems)
    workers = (default_workers(trainer.engine) if workers is None else workers) if trainer.processes else 1
    root = store.study_dir(out, study.name)
    if force or (study_file is None and study.family not in families.SHIPPED) or _complete(study, root):
        workers = 1  # (a finished study needs no helper, which would only import the framework)
    if trainer.engine is not None:
        trainer.engine.limit_threads(workers)
    results.record_study(root, study)
    pending = data.to_materialise(root, study.dataset)  # a registered dataset's arrays, once, for the helpers
    if pending is not None:
        store.write_arrays(*pending)
    session = uuid.uuid4().hex
    display = progress.Display(stream, workers)
    helpers, queue, drain = [], None, None
    if workers > 1:
        queue = processes.queue()
        drain = progress.drain(queue, display)
        small = splits if splits.nbytes <= SPLITS_TO_HELPERS else None  # larger ones each helper loads
        helpers = processes.start(workers - 1, _helper, (study.to_dict(), None if study_file is None else
                                                        str(study_file), str(out), verbose, workers, session, small,
                                                        queue))
    interrupts = processes.Interrupts()
    runner = Runner(study, root, splits, trainer, progress.Reporter(display), force, verbose, workers, session,
                    interrupts.check)
    runner.watch.add("setup", time.perf_counter() - started)
    try:
        with interrupts, processes.single_threaded_blas():
            result = runner.run()
            interrupts.check()
    except KeyboardInterrupt:
        processes.stop(helpers)
        display.close()
        raise Interrupted(_interrupted(study, root, runner)) from None
    except BaseException:
        processes.stop(helpers)
        display.close()
        raise
    processes.join(helpers)
    if drain is not None:
        queue.put(None)
        drain.join()
    display(progress.Event("timing", timings=tuple(runner.watch.parts.items())))
    display.close()
    with runner.watch("reports"):
        report.write_reports(root, stream=stream)
    timings = {**display.timings, "reports": runner.watch.parts["reports"]}
    result.timings = timings
    if verbose:
        print(f"\nWhere the time went, {1 + len(helpers)} process(es) together:", file=stream or sys.stdout)
        print("\n".join(progress.breakdown(timings)), file=stream or sys.stdout)
    result.workers = 1 + len(helpers)
    result.failed = [r for r in results.survey(study, root).records() if r.get("status") == "failed"]
    return result


def _study_elsewhere(study_dict, pickled, study_file, out, options, stream):
    """A study run in a fresh process (:mod:`.fresh_process`): its families registered, then :func:`run_study`."""
    import pickle

    for blob in pickled:
        families.register_family(pickle.loads(blob), overwrite=True)
    if study_file:
        loading.load_study(study_file)
    return run_study(study_from_dict(study_dict), out, stream=stream, study_file=study_file, **options)


def _interrupted(study, root, runner):
    survey = results.survey(study, root)
    done = sum(state.done for state in survey.states.values())
    return (f"interrupted: {done} model(s) of study {study.name!r} are done and kept ({runner.result.trained} "
            "trained by this command); run the same command again to resume.")
