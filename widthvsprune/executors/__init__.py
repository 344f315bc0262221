"""Where packs train, as registered executors.

- ``local`` (:mod:`.local`): this machine's processes (``--workers``);
- ``ray`` (:mod:`.raycluster`): tasks on a Ray cluster (the ``ray`` extra).

Each declares its options (:class:`~widthvsprune.executors.base.Option`);
the command line's choices and flags come from here. An executor trains the
packs it is given as they are: which models share a pack is the plan's
(:mod:`widthvsprune.plan.packs`), never the executor's or the number of its
slots, so a model's result does not depend on where it trained.
"""

import importlib

from widthvsprune.errors import StudyError, problem
from widthvsprune.executors.base import Executor, Option

#: name -> "module:class", imported only when asked for (Ray is an optional extra).
EXECUTORS = {
    "local": "widthvsprune.executors.local:LocalExecutor",
    "ray": "widthvsprune.executors.raycluster:RayExecutor",
}


def names():
    return list(EXECUTORS)


def executor_class(name):
    """The executor class registered as ``name`` (its module imports no optional package)."""
    if name not in EXECUTORS:
        raise StudyError(problem("--executor", f"one of {names()}", name))
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def all_options():
    """``{option name: (Option, executor name)}`` of every registered executor."""
    return {o.name: (o, name) for name in names() for o in executor_class(name).options}


def create(name, engine_name, verbose=False, **options):
    """The executor called ``name``, with its options.

    Raises:
        StudyError: for an unknown executor, an option another executor owns,
            or an executor that cannot start (Ray not installed, say).
    """
    cls = executor_class(name)
    accepted = {o.name for o in cls.options}
    given = {k: v for k, v in options.items() if v is not None}
    owners = all_options()
    wrong = [k for k in given if k not in accepted]
    if wrong:
        flags = ", ".join(owners[k][0].flag if k in owners else k for k in wrong)
        owner = owners.get(wrong[0], (None, "another executor"))[1]
        raise StudyError(problem("--executor", f"{owner!r} with {flags}", name))
    return cls(engine_name, verbose=verbose, **given)


__all__ = ["EXECUTORS", "Executor", "Option", "all_options", "create", "executor_class", "names"]
