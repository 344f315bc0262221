"""Where packs train: in this process (``local``), or as tasks on a Ray cluster (``ray``).

An executor takes packs (:class:`widthvsprune.engines.base.Pack`) and returns
their outcomes; it never writes results. The runner in the driver process
plans, claims, records and owns the KerasTuner oracles, whichever executor
trains. With ``local``, several processes can share a study through the run
locks (``--workers``); with ``ray``, one driver hands a stage's packs to the
cluster, ``slots`` of them at a time.
"""

from widthvsprune import engines

EXECUTORS = ("local", "ray")


class LocalExecutor:
    """Trains packs one after another in this process with the engine."""

    name = "local"
    slots = 1

    def __init__(self, engine_name):
        self.engine_name = engine_name
        self.engine = engines.load(engine_name)

    def train(self, packs, splits):
        """One list of :class:`~widthvsprune.engines.base.Outcome` per pack, in order."""
        return [self.engine.train(pack, splits) for pack in packs]

    def count_params(self, family, widths, input_shape, num_classes):
        return self.engine.count_params(family, widths, input_shape, num_classes)

    def close(self):
        pass


def create(name, engine_name, address=None, cpus_per_pack=None, gpus_per_pack=None, verbose=False):
    """The executor called ``name``.

    Raises:
        StudyError: for an unknown executor, options that need ``ray``, or Ray
            not installed or unable to give a pack its resources.
    """
    from widthvsprune.config import problem
    from widthvsprune.errors import StudyError

    if name not in EXECUTORS:
        raise StudyError(problem("--executor", f"one of {list(EXECUTORS)}", name))
    if name == "local":
        extra = [f"--{flag}" for flag, value in (("address", address), ("cpus-per-pack", cpus_per_pack),
                                                  ("gpus-per-pack", gpus_per_pack)) if value is not None]
        if extra:
            raise StudyError(problem("--executor", f"'ray' with {', '.join(extra)}", name))
        return LocalExecutor(engine_name)
    from widthvsprune.executors.raycluster import RayExecutor

    return RayExecutor(engine_name, address, cpus_per_pack, gpus_per_pack, verbose)


def split(pack, parts):
    """``pack`` cut into at most ``parts`` packs of consecutive models (a pack trains as its models would alone)."""
    import dataclasses

    n = len(pack.models)
    parts = max(1, min(int(parts), n))
    if parts == 1:
        return [pack]
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [dataclasses.replace(pack, models=pack.models[a:b]) for a, b in zip(bounds, bounds[1:])]
