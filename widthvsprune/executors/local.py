"""The ``local`` executor: packs train one after another in this process; ``--workers`` adds processes."""

from widthvsprune import engines
from widthvsprune.executors.base import Executor


class LocalExecutor(Executor):
    """Trains packs one after another in this process with the engine.

    Several processes share a study through the run locks (``--workers N``
    starts N - 1 helpers, each with an executor of its own).
    """

    name = "local"
    processes = True

    def __init__(self, engine_name, verbose=False):
        self.engine_name = engine_name
        self._engine = engines.load(engine_name)

    @property
    def engine(self):
        return self._engine

    def train(self, packs, splits):
        return [self._engine.train(pack, splits) for pack in packs]

    def count_params(self, family, widths, input_shape, num_classes):
        return self._engine.count_params(family, widths, input_shape, num_classes)
