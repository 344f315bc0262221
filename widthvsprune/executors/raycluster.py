"""The ``ray`` executor: packs train as Ray tasks; outcomes come back to the driver, which records them.

Workers need no access to the results folder: each task gets its pack and
the dataset (put in Ray's object store once) and returns each model's
outcome (history, weights, kernels, accuracies, or an error). A worker or
node that dies mid-pack loses nothing recorded, and Ray runs the pack again
elsewhere (up to :data:`RETRIES` times); a pack that fails for a reason of
its own comes back as failed outcomes, recorded as the local runner records
failures. Without ``address`` a local Ray instance is started (on loopback,
with a private temporary folder) and stopped with the study.
"""

import contextlib
import os
import shutil
import socket
import tempfile

from widthvsprune import engines
from widthvsprune.engines.base import failed
from widthvsprune.errors import StudyError, problem
from widthvsprune.executors.base import Executor, Option, environment_set

RETRIES = 3
OBJECT_STORE_BYTES = 256 * 1024 * 1024
# A local instance stays on this machine: no usage statistics, no cloud-metadata probes (sent to a closed port).
_LOCAL_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_REPORT_URL": "http://127.0.0.1:9/",
    "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1",
}


def train_pack(engine_name, pack, splits):
    """A Ray task: trains one pack with the engine in this worker process (imported once per worker)."""
    outcomes = engines.load(engine_name).train(pack, splits)
    where = f"{socket.gethostname()}:{os.getpid()}"
    for outcome in outcomes:
        outcome.where = where
    return outcomes


def _import_ray():
    try:
        import ray
    except ImportError:
        raise StudyError(problem("--executor", "Ray installed: pip install 'widthvsprune[ray]'", "ray")) from None
    return ray


class RayExecutor(Executor):
    """Trains packs as Ray tasks, ``slots`` at a time.

    Args:
        engine_name: the engine every worker trains with.
        address: a running cluster's address (``ray start --head`` prints it);
            ``None`` starts a local instance with every CPU of this machine.
        cpus_per_pack: CPUs each pack asks for (default 1).
        gpus_per_pack: GPU share each pack asks for (default 0; ``0.25`` puts
            four packs on one GPU).
        verbose: let Ray's own log lines through.
    """

    name = "ray"
    options = (
        Option("address", str, "the Ray cluster to join (ray start --head prints it); default: a local Ray instance",
               "ADDRESS"),
        Option("cpus_per_pack", float, "CPUs each pack asks of Ray (default 1)", "N"),
        Option("gpus_per_pack", float, "GPU share each pack asks of Ray, e.g. 0.25 puts four packs on one GPU "
                                       "(default 0)", "F"),
    )

    def __init__(self, engine_name, address=None, cpus_per_pack=None, gpus_per_pack=None, verbose=False):
        self.ray = ray = _import_ray()
        self.engine_name, self._engine, self._splits, self._tmp = engine_name, None, None, None
        engines.prepare(engine_name)  # the driver's Keras (for KerasTuner) runs the engine's backend
        cpus = 1.0 if cpus_per_pack is None else float(cpus_per_pack)
        gpus = 0.0 if gpus_per_pack is None else float(gpus_per_pack)
        if cpus <= 0 or gpus < 0:
            raise StudyError(problem("--cpus-per-pack" if cpus <= 0 else "--gpus-per-pack", "a number > 0 (GPUs: >= 0)",
                                     cpus if cpus <= 0 else gpus))
        quiet = {} if verbose else {"log_to_driver": False, "logging_level": "ERROR"}
        if address is None:
            self._tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
            with environment_set({k: os.environ.get(k, v) for k, v in _LOCAL_ENV.items()}):
                ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, _temp_dir=self._tmp,
                         object_store_memory=OBJECT_STORE_BYTES, **quiet)
        else:
            try:
                ray.init(address=address, **quiet)
            except Exception as error:  # no cluster there
                raise StudyError(problem("--address", "the address of a running Ray cluster",
                                         f"{address} ({type(error).__name__}: {error})")) from None
        if not verbose:
            _quiet_worker_deaths(ray)
        total = ray.cluster_resources()
        if gpus > total.get("GPU", 0.0):
            self.close()
            raise StudyError(f"--gpus-per-pack: Expected at most the cluster's {total.get('GPU', 0.0):g} GPU(s). "
                             f"Received: --gpus-per-pack={gpus:g}")
        if cpus > total.get("CPU", 0.0):
            self.close()
            raise StudyError(f"--cpus-per-pack: Expected at most the cluster's {total.get('CPU', 0.0):g} CPU(s). "
                             f"Received: --cpus-per-pack={cpus:g}")
        self.slots = max(1, int(total["GPU"] // gpus) if gpus else int(total.get("CPU", 1.0) // cpus))
        self._task = ray.remote(max_retries=RETRIES, max_calls=0)(train_pack).options(num_cpus=cpus, num_gpus=gpus)

    def train(self, packs, splits):
        """Runs every pack as a task (the cluster schedules them on free slots); outcomes in order."""
        ray = self.ray
        from ray.exceptions import RayError, RayTaskError

        if self._splits is None or self._splits[0] is not splits:
            self._splits = (splits, ray.put(splits))
        refs = [self._task.remote(self.engine_name, pack, self._splits[1]) for pack in packs]
        out = []
        for pack, ref in zip(packs, refs):
            try:
                out.append(ray.get(ref))
            except RayTaskError as error:  # the pack's own code raised: recorded as a failure, tried again next run
                cause = error.cause if error.cause is not None else error
                out.append([failed(f"{type(cause).__name__}: {cause}")] * len(pack.models))
            except RayError as error:  # its workers kept dying (retries spent), the node is gone, out of memory
                out.append([failed(f"the pack was lost on the cluster after {RETRIES} retries "
                                   f"({type(error).__name__})")] * len(pack.models))
        return out

    def count_params(self, family, widths, input_shape, num_classes):
        """Counts by building in this process (only families without a count function need it)."""
        if self._engine is None:
            self._engine = engines.load(self.engine_name)
        return self._engine.count_params(family, widths, input_shape, num_classes)

    def close(self):
        """Disconnects; a local instance is stopped and its folder removed."""
        with contextlib.suppress(Exception):
            self.ray.shutdown()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _quiet_worker_deaths(ray):
    """Ray prints a line to the driver's standard output whenever a worker dies and its task is retried; the
    runner reports the outcome itself. (A private hook of Ray's: left alone if it is not there.)"""
    try:
        import ray._private.worker as worker

        worker.print_to_stdstream = lambda data, ignore_prefix=False: None
    except (ImportError, AttributeError):  # pragma: no cover - another Ray version
        pass
