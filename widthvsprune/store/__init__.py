"""The results store: paths, atomic files, locks (re-exported here), run records and study folders.

- :mod:`.paths`: where everything of a study's results folder lives;
- :mod:`.files`: atomic writes and checked reads;
- :mod:`.locks`: one OS file lock per run or search folder;
- :mod:`.records`: the run record schema and reading records back with checks;
- :mod:`.results`: a results folder as the planner sees it (the survey).

No framework is imported.
"""

from widthvsprune.store.files import (
    FILE_MODE,
    DiskFullError,
    check_writable,
    read_arrays,
    read_json,
    read_weights,
    sha256,
    write_arrays,
    write_bytes,
    write_csv,
    write_json,
    write_weights,
)
from widthvsprune.store.locks import Lock, remove_leftovers
from widthvsprune.store.paths import (
    config_json,
    history_csv,
    history_json,
    lock_file,
    predictions_npz,
    record_json,
    run_dir,
    runs_dir,
    search_dir,
    search_result_json,
    seed_dir,
    study_dir,
    study_json,
    table,
    tensorboard_dir,
    weights_npz,
)

__all__ = [
    "FILE_MODE", "DiskFullError", "Lock", "check_writable", "config_json", "history_csv", "history_json", "lock_file",
    "predictions_npz", "read_arrays", "read_json", "read_weights", "record_json", "remove_leftovers", "run_dir",
    "runs_dir", "search_dir", "search_result_json", "seed_dir", "sha256", "study_dir", "study_json", "table",
    "tensorboard_dir", "weights_npz", "write_arrays", "write_bytes", "write_csv", "write_json", "write_weights",
]
