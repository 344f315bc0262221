"""Where results live: every path of a study's results folder comes from one function here.

Layout::

    <out>/<study>/
        study.json                      the study the tables describe (see history)
        history/<hash>.json             every study that ran in this folder
        runs.csv, comparison.csv, ...   derived tables, regenerated at will
        runs/<run-key>/search/          a search: its KerasTuner project and result.json
        runs/<run-key>/seed-<k>/
            config.json                 the full resolved run configuration
            history.csv                 one row per epoch
            weights.npz                 the trained (stripped) weights
            predictions.npz             which test examples the model got right
            record.json                 written last: the "done" marker

Nothing else assembles paths.
"""

import pathlib


def study_dir(out, study_name):
    return pathlib.Path(out) / study_name


def study_json(root):
    return pathlib.Path(root) / "study.json"


def history_json(root, digest):
    return pathlib.Path(root) / "history" / f"{digest}.json"


def runs_dir(root):
    return pathlib.Path(root) / "runs"


def run_dir(root, key):
    return runs_dir(root) / key


def seed_dir(root, key, seed):
    return run_dir(root, key) / f"seed-{int(seed)}"


def search_dir(root, key):
    return run_dir(root, key) / "search"


def search_result_json(root, key):
    return search_dir(root, key) / "result.json"


def config_json(folder):
    return pathlib.Path(folder) / "config.json"


def record_json(folder):
    return pathlib.Path(folder) / "record.json"


def history_csv(folder):
    return pathlib.Path(folder) / "history.csv"


def weights_npz(folder):
    return pathlib.Path(folder) / "weights.npz"


def predictions_npz(folder):
    return pathlib.Path(folder) / "predictions.npz"


def lock_file(folder):
    return pathlib.Path(folder) / ".lock"


def tensorboard_dir(folder):
    return pathlib.Path(folder) / "tensorboard"


def table(root, name):
    """A derived table or figure of the study: ``runs.csv``, ``frontier.png`` ..."""
    return pathlib.Path(root) / name
