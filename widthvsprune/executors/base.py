"""The executor interface: where packs train.

An executor takes packs (:class:`widthvsprune.engines.base.Pack`) and returns
their outcomes; it never writes results. The runner in the driver process
plans, claims, records and owns the KerasTuner oracles, whichever executor
trains. Each executor declares its own options (:class:`Option`), which the
command line offers and :func:`widthvsprune.executors.create` checks.
"""

import abc
import contextlib
import dataclasses
import os
from typing import Optional


@contextlib.contextmanager
def environment_set(values):
    """``os.environ`` with ``values`` set inside the block (a child process started there inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of an executor.

    Attributes:
        name: its keyword in :func:`widthvsprune.run_study` (``cpus_per_pack``);
            the command line's flag is ``--cpus-per-pack``.
        type: ``str``, ``int`` or ``float``.
        help: one line for ``--help``.
        metavar: the value's name in ``--help``.
    """

    name: str
    type: type = str
    help: str = ""
    metavar: Optional[str] = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


class Executor(abc.ABC):
    """Trains packs somewhere.

    Attributes:
        name: its registry name (``--executor``).
        options: the :class:`Option` s it accepts.
        slots: how many packs it trains at once (the runner hands it up to this many in one call; it never
            changes what a pack holds).
        processes: whether ``--workers`` helper processes may share a study
            with it (each with an executor of its own).
    """

    name = ""
    options = ()
    slots = 1
    processes = False

    @abc.abstractmethod
    def train(self, packs, splits):
        """One list of :class:`~widthvsprune.engines.base.Outcome` per pack, in order; each pack trains whole."""

    @abc.abstractmethod
    def count_params(self, family, widths, input_shape, num_classes):
        """Parameters of a family's model, counted by building it (families without a count function)."""

    @property
    def engine(self):
        """The engine instance in this process, or ``None`` when packs train elsewhere."""
        return None

    def close(self):  # noqa: B027 - most executors hold nothing
        """Releases what the executor holds (a cluster connection)."""
