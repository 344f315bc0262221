"""tf_keras's private names used outside its engine: its counters of automatic layer names.

A study file that builds a tf_keras model must get the same layer names on
every load (its family's config, and so its run keys, hold them), so
:func:`widthvsprune.study.loading.fresh_layer_names` counts them from zero
while it loads. tf_keras keeps those counters in its private backend module;
only a tf_keras already imported is touched (nothing here imports it).
Tested against the installed release (``tests/test_adapters.py``).
"""

import sys

_BACKEND = "tf_keras.src.backend"
#: Private names of ``tf_keras.src.backend`` used here.
PRIVATE = ("PER_GRAPH_OBJECT_NAME_UIDS", "OBSERVED_NAMES", "reset_uids")


def _backend():
    return sys.modules.get(_BACKEND)


def missing():
    """The names of :data:`PRIVATE` that the installed tf_keras lacks (importing it)."""
    import importlib

    backend = importlib.import_module(_BACKEND)
    return [name for name in PRIVATE if not hasattr(backend, name)]


def take_layer_name_counters():
    """tf_keras's counters of automatic layer names as they are, then reset to count from zero; ``None`` when
    tf_keras is not imported. Give the result to :func:`restore_layer_name_counters`."""
    backend = _backend()
    if backend is None:
        return None
    saved = (dict(backend.PER_GRAPH_OBJECT_NAME_UIDS), set(backend.OBSERVED_NAMES))
    backend.reset_uids()
    return saved


def restore_layer_name_counters(saved):
    """Puts back what :func:`take_layer_name_counters` returned."""
    backend = _backend()
    if backend is None or saved is None:
        return
    uids, observed = saved
    backend.PER_GRAPH_OBJECT_NAME_UIDS.clear()
    backend.PER_GRAPH_OBJECT_NAME_UIDS.update(uids)
    backend.OBSERVED_NAMES.clear()
    backend.OBSERVED_NAMES.update(observed)
