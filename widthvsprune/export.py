"""Taking a studied model home: one run's trained weights as a plain Keras model.

A finished study keeps every evaluated model's stripped weights
(``weights.npz``, ``get_weights()`` order) beside its record. :func:`export_model`
picks one of them by arm, size point, seed and tuning (the rows of
``runs.csv``), builds its family at the run's widths with the engine's Keras,
and sets the weights, after checking them against the checksum its record
holds. The pruned model keeps its wide widths with its zeros in place; a
narrow model has its own widths. The model needs no widthvsprune code to load.
"""

import pathlib

import numpy as np

from widthvsprune import quiet
from widthvsprune.errors import ResultsError, StudyError
from widthvsprune.families.derived import configs
from widthvsprune.store import files, paths

TUNINGS = ("tuned", "untuned")


def _rows(folder):
    """The evaluated models of a finished study: its ``runs.csv`` rows, as dicts."""
    import pandas as pd

    table = paths.table(folder, "runs.csv")
    if not table.is_file():
        raise ResultsError(f"DIR: Expected a finished study's results folder holding runs.csv. "
                           f"Received: DIR={str(folder)!r}")
    frame = pd.read_csv(table)
    frame = frame[frame["role"] == "eval"] if "role" in frame else frame
    return frame.to_dict("records")


def _pick(rows, field, value, what):
    """The rows whose ``field`` equals ``value``; one line listing what exists when none does."""
    present = sorted({r[field] for r in rows})
    if value is None:
        if len(present) == 1:
            return rows
        raise StudyError(f"{field}: Expected one of {present} for {what} (several exist; name one). "
                         f"Received: {field}=None")
    found = [r for r in rows if r[field] == value or (isinstance(value, float) and np.isclose(r[field], value))]
    if not found:
        raise StudyError(f"{field}: Expected one of {present} for {what}. Received: {field}={value!r}")
    return found


def select_run(folder, arm, sparsity=None, seed=None, tuning=None):
    """The ``runs.csv`` row of the one evaluated model that the selection names.

    Args:
        folder: a finished study's results folder.
        arm: ``"baseline"``, ``"pruned"``, ``"narrow"`` or another arm of the study.
        sparsity: the size point (the pruned arm's target sparsity); ``None``
            where the arm has one size point only (the baseline's is 0).
        seed: the evaluation seed; ``None`` where the study has one.
        tuning: ``"tuned"`` or ``"untuned"``; ``None`` is ``"tuned"`` where
            the arm has tuned rows, else the only one there is.

    Returns:
        The row, as a dict (``key``, ``seed``, ``widths``, ``test_accuracy`` ...).

    Raises:
        StudyError: one line naming what exists when the selection is
            missing or ambiguous.
    """
    rows = _rows(folder)
    rows = _pick(rows, "arm", arm, "the arm")
    if tuning is None and "tuned" in {r["tuning"] for r in rows}:
        tuning = "tuned"
    rows = _pick(rows, "tuning", tuning, f"arm {arm!r}")
    what = f"arm {arm!r} ({rows[0]['tuning']})"
    sparsity = None if sparsity is None else float(sparsity)
    rows = _pick([{**r, "sparsity": float(r["target_sparsity"])} for r in rows], "sparsity", sparsity, what)
    rows = _pick([{**r, "seed": int(r["seed"])} for r in rows], "seed", None if seed is None else int(seed),
                 f"{what} at sparsity {rows[0]['sparsity']}")
    return rows[0]


def _keras_for(family):
    from widthvsprune.families import keras_of

    if keras_of(family) == "2":
        import os

        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        import tf_keras

        return tf_keras
    import keras

    return keras


def export_model(folder, arm, sparsity=None, seed=None, tuning=None, path=None):
    """One evaluated model of a finished study, as a plain Keras model with its trained weights.

    The model is the family built at the run's widths for the study's data
    (its input shape and number of classes), with the run's stripped weights:
    a pruned model at its wide widths with its zeros in place, a narrow one at
    its own widths. Its output is logits (the predicted class is their
    argmax); it is compiled with a from-logits cross-entropy and accuracy, so
    ``model.evaluate(x_test, y_test)`` gives the recorded test accuracy on the
    study's test split (prepared as the study prepares it: ``uint8`` images
    divided by 255). Saved with ``model.save``, it loads with
    ``keras.models.load_model`` without widthvsprune.

    Args:
        folder: a finished study's results folder (``results/<study>``).
        arm: ``"baseline"``, ``"pruned"``, ``"narrow"`` (or another arm of the study).
        sparsity: the size point (the pruned arm's target sparsity); may be
            left out where the arm has one (the baseline's is 0).
        seed: the evaluation seed; may be left out where the study has one.
        tuning: ``"tuned"`` (the default where the arm has tuned rows) or ``"untuned"``.
        path: where to save it (a ``.keras`` file); ``None`` saves nothing.

    Returns:
        The Keras model.

    Raises:
        StudyError: one line naming what exists, for a missing or ambiguous
            selection, or a family that is not known in this process.
        ResultsError: a folder without runs.csv, or weights that do not
            match their record.

    Example:

    ```python
    model = export_model("results/quickstart", arm="pruned", sparsity=0.9, seed=0)
    model.save("pruned.keras")
    ```
    """
    from widthvsprune import families
    from widthvsprune.store import results

    folder = pathlib.Path(folder)
    if tuning is not None and tuning not in TUNINGS:
        raise StudyError(f"tuning: Expected one of {list(TUNINGS)}. Received: tuning={tuning!r}")
    if path is not None and pathlib.Path(path).suffix != ".keras":
        raise StudyError(f"path: Expected a file name ending in .keras. Received: path={str(path)!r}")
    study = results.load_study(folder)
    row = select_run(folder, arm, sparsity, seed, tuning)
    run = paths.seed_dir(folder, row["key"], row["seed"])
    record = files.read_json(paths.record_json(run))
    weights_file = paths.weights_npz(run)
    if not weights_file.is_file() or files.sha256(weights_file) != record.get("files", {}).get("weights.npz"):
        raise ResultsError(f"weights.npz: Expected the weights its record vouches for. Received: "
                           f"weights.npz={str(weights_file)!r}, missing or changed")
    family = families.get_family(study.family)
    if families.is_recorded(study.family):
        raise StudyError(f"family: Expected a family registered in this process to build the model (from Python, "
                         f"register it first; on the command line, --study FILE names the study file that does). "
                         f"Received: family={study.family!r}, known here only from the study's records")
    from widthvsprune.run.study import load_splits

    splits = load_splits(study)
    widths = tuple(int(w) for w in str(row["widths"]).split("x"))
    with quiet.native_output_hidden():  # tf_keras imports TensorFlow
        keras = _keras_for(family)
        model = family.build(widths, splits.input_shape, splits.num_classes, keras)
        model.set_weights(files.read_weights(weights_file))
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        if path is not None:
            pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
            with configs.serializing(model):
                model.save(str(path))
    return model
