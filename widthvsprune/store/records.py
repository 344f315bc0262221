"""Run records: their schema, how they are made, and reading them back with checks.

A run's ``record.json`` is written last and is its "done" marker. The record
holds the SHA-256 of every file it vouches for; a run whose record, config,
weights or predictions are unreadable, truncated, or do not match their
checksums is *invalid*: it counts as not done and is trained again, and the
reason names the file.

:data:`RUN_COLUMNS` is the one definition of ``runs.csv``'s columns; every
row is a record restricted to them.
"""

import dataclasses
import json
import math
from typing import Optional

from widthvsprune.pruning.allocations import canonical
from widthvsprune.status import RunStatus, SearchStatus
from widthvsprune.store import files, paths


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of ``runs.csv``: its name and what it holds."""

    name: str
    meaning: str


RUN_COLUMNS = (
    Column("study", "study name"),
    Column("arm", "`baseline`, `pruned`, `dense_finetuned` (the baseline fine-tuned as long as the pruned arm, "
                  "unpruned) or `narrow` (`sparse_scratch` in a study with that control, or a registered arm's name)"),
    Column("tuning", "`tuned` (the configuration its arm's search chose) or `untuned` (the recipe as written: the "
                     "controls)"),
    Column("role", "`eval`: a model of the comparison; `bracket`: the narrow arm's smallest model above a budget "
                   "its largest model within could not fill to 90% (the verdict brackets the budget)"),
    Column("pruning", "pruned rows: the allocation used, how the zeros were spread over the layers (`uniform`, "
                      "`first_dense`, `uniform_plus`, `erk`, `lamp`, `global`, `random` or one of your own); "
                      "sparse_scratch rows: the allocation of the pruned model whose shape it took"),
    Column("engine", "the engine that trained it: `tf_keras` or `jax` (both arms of a study use the same)"),
    Column("family", "the model family"),
    Column("dataset", "the dataset"),
    Column("widths", "the model's widths (`128x64`)"),
    Column("seed", "evaluation seed (initial weights and batch order)"),
    Column("target_sparsity", "the size point: the pruned arm's target (a narrow row's opponent's; 0 for the "
                              "baseline)"),
    Column("sparsity", "measured fraction of zeros over all the model's prunable kernels"),
    Column("kernel_densities", "pruned and sparse_scratch rows: the share of nonzero weights of every prunable kernel, "
                               "in layer order, space-separated (`0.520 0.100 0.310`)"),
    Column("total_params", "every parameter of the plain (stripped) model, biases included"),
    Column("nonzero_params", "nonzero parameters of the stripped weights (kernels and biases; tfmot never prunes "
                             "biases). Dense models count every parameter"),
    Column("budget", "narrow rows: the fewest nonzeros of the pruned models at this size point (every seed, tuned "
                     "and untuned); `total_params <= budget` always, except on `bracket` rows"),
    Column("fill", "narrow rows: `total_params / budget` (above 1 on `bracket` rows)"),
    Column("test_accuracy", "test accuracy after training (a model with batch normalization: with its statistics "
                            "recalibrated on the training split, unless the study's `recalibrate_batchnorm` is False)"),
    Column("test_examples", "test examples the accuracy was measured on"),
    Column("val_accuracy", "validation accuracy after training"),
    Column("diverged", "the model ended at chance accuracy (within three standard errors of 1 / classes on the test "
                       "set): its recipe failed, whatever the arm. Records written before this column existed get "
                       "it from their test accuracy and output layer"),
    Column("train_accuracy", "training accuracy of the last epoch, measured while it trained (running over its "
                             "batches, in training mode)"),
    Column("broken_evaluation", "the model is at chance on the test set (as `diverged`) although its training "
                                "accuracy is at least halfway from chance to 1: its evaluation, not its weights, "
                                "failed (batch normalization statistics that do not match the weights, say). No "
                                "verdict stands on it (`unreliable`). False for records written before this column "
                                "existed"),
    Column("epochs", "epochs the model cost in total (pruned: baseline + fine-tune; narrow: the same number of "
                     "optimizer steps at the baseline's batch size, so possibly fractional)"),
    Column("steps", "optimizer steps the model cost in total; equal for a pruned model and its narrow opponent"),
    Column("train_seconds", "wall time of its training (pruned: baseline + fine-tune)"),
    Column("learning_rate", "the learning rate used (pruned: the fine-tune's)"),
    Column("search_trials", "tuned rows: trials of the search that chose this configuration (pruned rows: the "
                            "pruned search of this size point; the baseline search is on the baseline rows)"),
    Column("search_epochs", "tuned rows: epochs those trials trained in all"),
    Column("search_seconds", "tuned rows: wall time of those trials"),
    Column("frequency", "pruned rows: steps between mask updates (resolved: with `Pruning.frequency` unset, the "
                        "span's length over 16)"),
    Column("end_fraction", "pruned rows: share of the fine-tune after which masks stop changing"),
    Column("prune_output", "pruned rows: whether the output layer was pruned (if not, the other layers took its "
                           "share of the zeros)"),
    Column("mask_updates", "pruned rows: mask updates the schedule made"),
    Column("recovery_fraction", "pruned rows: share of the fine-tune trained at the final sparsity"),
    Column("accuracy_drop", "pruned rows: test accuracy lost against its own baseline"),
    Column("output_kept_per_class_min", "pruned rows: the fewest output-layer weights any class kept"),
    Column("dense_bytes", "float32 storage of all weights: `4 * total_params`"),
    Column("sparse_bytes", "per kernel the cheapest of dense float32, or 4 bytes per nonzero plus a bitmask or a "
                           "CSR index; biases dense"),
    Column("gzip_bytes", "the raw float32 weights gzipped (level 9)"),
    Column("flops", "multiply-adds per example of the dense model"),
    Column("nonzero_flops", "multiply-adds per example skipping zero weights"),
    Column("note", "narrow rows: why a model is below 90% of its budget (the family's width step), or that it "
                   "is the model above the budget that brackets it"),
    Column("key", "the run key (folder name)"),
)
COLUMNS = [c.name for c in RUN_COLUMNS]

STATUSES = (RunStatus.OK, RunStatus.FAILED)  # what a record.json may say
_REQUIRED_OK = ("arm", "seed", "key", "test_accuracy", "val_accuracy", "total_params", "nonzero_params", "files")


@dataclasses.dataclass(frozen=True)
class RunState:
    """What the store holds for one run.

    Attributes:
        status: ``"ok"``, ``"failed"``, ``"missing"`` or ``"invalid"``.
        record: the record (``ok`` and ``failed`` only).
        problem: why it is ``invalid``: the file and what is wrong with it.
    """

    status: str
    record: Optional[dict] = None
    problem: str = ""

    @property
    def done(self):
        return self.status == RunStatus.OK


MISSING = RunState(RunStatus.MISSING.value)


def _invalid(name, why):
    return RunState(RunStatus.INVALID.value, problem=f"{name} {why}")


def read_run(folder, config=None):
    """Reads a run's record and checks every file it vouches for.

    Args:
        folder: the run's folder (``runs/<key>/seed-<k>``).
        config: the configuration the run must hold (its ``config.json``),
            or ``None`` not to check it.

    Returns:
        A :class:`RunState`.
    """
    path = paths.record_json(folder)
    if not path.exists():
        return MISSING
    try:
        record = files.read_json(path)
    except (OSError, ValueError) as error:
        return _invalid("record.json", f"is unreadable ({type(error).__name__}: {error})")
    if not isinstance(record, dict) or record.get("status") not in STATUSES:
        return _invalid("record.json", "holds no run record (no valid status)")
    if config is not None:
        try:
            stored = files.read_json(paths.config_json(folder))
        except (OSError, ValueError) as error:
            return _invalid("config.json", f"is unreadable ({type(error).__name__}: {error})")
        if stored != json.loads(json.dumps(config)):
            return _invalid("config.json", "holds another configuration than the study's")
    if record["status"] == RunStatus.FAILED:
        return RunState(RunStatus.FAILED.value, record)
    missing = [name for name in _REQUIRED_OK if name not in record]
    if missing:
        return _invalid("record.json", f"lacks {missing}")
    for name, digest in record["files"].items():
        file = folder / name
        try:
            actual = files.sha256(file)
        except OSError as error:
            return _invalid(name, f"is unreadable ({type(error).__name__}: {error.strerror or error})")
        if actual != digest:
            return _invalid(name, "does not match its checksum in record.json (truncated or changed)")
    return RunState(RunStatus.OK.value, record)


def read_search(root, key):
    """A search's result, or ``(None, problem)``: ``(result, "")`` when it is readable."""
    path = paths.search_result_json(root, key)
    if not path.exists():
        return None, ""
    try:
        result = files.read_json(path)
    except (OSError, ValueError) as error:
        return None, f"search/result.json is unreadable ({type(error).__name__}: {error})"
    if not isinstance(result, dict) or result.get("status") not in tuple(SearchStatus):
        return None, "search/result.json holds no search result"
    return result, ""


def trials_done(root, key):
    """Trials of a search that finished, from its saved trial states (a search still running, or stopped)."""
    count = 0
    for path in paths.search_dir(root, key).glob("trial_*/trial.json"):
        try:
            count += files.read_json(path).get("status") == "COMPLETED"
        except (OSError, ValueError, AttributeError):
            continue
    return count


def ok_row(record):
    """A record as a ``runs.csv`` row: exactly :data:`COLUMNS`; the allocation by its registered name (``role`` is
    ``eval`` in records of earlier releases, which lack it)."""
    row = {name: record.get(name, math.nan) for name in COLUMNS}
    row["role"] = record.get("role", "eval")
    if isinstance(row["pruning"], str) and row["pruning"]:
        row["pruning"] = canonical(row["pruning"])  # records made before the rename say "layerwise"
        row["kernel_densities"] = kernel_densities(record)
    return row


def kernel_densities(record):
    """The share of nonzero weights of every prunable kernel of a record, in layer order, as text."""
    return " ".join(f"{layer['kernel_nonzero'] / layer['kernel_params']:.3f}" for layer in record.get("layers", ())
                    if layer.get("prunable", True) and layer["kernel_params"])
