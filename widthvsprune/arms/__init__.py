"""The arms of a study, as registered parts.

Each arm is one :class:`~widthvsprune.arms.base.Arm` in a file of its own:

- :mod:`.baseline`: the wide dense model;
- :mod:`.pruned`: the baseline magnitude-pruned to each size point ("large-sparse");
- :mod:`.dense_finetuned`: the baseline fine-tuned like the pruned arm, unpruned
  (the dense reference trained as long as the arms, a control);
- :mod:`.narrow`: dense models of the family within the pruned models'
  nonzeros ("small-dense");
- :mod:`.sparse_scratch`: the pruned arm's sparse shape trained from scratch
  (a control, off by default).

A new arm is a subclass in a new file and one :func:`register` call. Nothing
here imports a framework.
"""

from widthvsprune.arms.base import Arm, Contrast, Fit, SearchContext
from widthvsprune.arms.baseline import Baseline
from widthvsprune.arms.dense_finetuned import DenseFinetuned
from widthvsprune.arms.narrow import Narrow
from widthvsprune.arms.pruned import Pruned
from widthvsprune.arms.sparse_scratch import SparseScratch

_ARMS = {}


def register(arm, overwrite=False):
    """Adds an arm (an :class:`Arm` instance) to the registry; studies then name it in ``Study.arms``.

    Raises:
        TypeError: if ``arm`` is not an :class:`Arm`.
        ValueError: if the name is taken and ``overwrite`` is False.

    Example:

    ```python
    from widthvsprune import arms

    class Wider(arms.Arm):
        name = "wider"
        ...

    arms.register(Wider())
    ```
    """
    if not isinstance(arm, Arm):
        raise TypeError(f"Expected a widthvsprune.arms.Arm. Received: arm={arm!r} (of type {type(arm).__name__})")
    if arm.name in _ARMS and not overwrite:
        raise ValueError(f"Expected an arm name that is not registered yet (or overwrite=True). "
                         f"Received: name={arm.name!r}")
    _ARMS[arm.name] = arm
    return arm


def get(name):
    """The registered arm called ``name``.

    Raises:
        KeyError: naming the registered arms if ``name`` is unknown.
    """
    if name not in _ARMS:
        raise KeyError(f"Expected an arm, one of {names()}. Received: arm={name!r}")
    return _ARMS[name]


def names():
    """Every registered arm's name, in planning order."""
    return [a.name for a in sorted(_ARMS.values(), key=lambda a: a.order)]


def default_names():
    """The arms a study has unless it says otherwise."""
    return tuple(n for n in names() if _ARMS[n].default)


def of(study):
    """The arms of ``study``, in planning order."""
    chosen = set(study.arms)
    return [arm for arm in sorted(_ARMS.values(), key=lambda a: a.order) if arm.name in chosen]


def contrasts(study):
    """Every :class:`Contrast` of ``study``'s arms (the headline first)."""
    found = [c for arm in of(study) for c in arm.contrasts(study)]
    return sorted(found, key=lambda c: not c.headline)


def headline(study):
    """The study's headline :class:`Contrast`."""
    return next(c for c in contrasts(study) if c.headline)


def rows(frame, arm, tuning=None, tuning_column="tuning"):
    """The rows of a table (runs, frontier, tolerance) that belong to ``arm`` (and ``tuning``)."""
    keep = frame["arm"].isin([arm])
    if tuning is not None:
        keep &= frame[tuning_column].isin([tuning])
    return frame[keep]


for _arm in (Baseline(), Pruned(), DenseFinetuned(), Narrow(), SparseScratch()):
    register(_arm)

__all__ = ["Arm", "Contrast", "Fit", "SearchContext", "contrasts", "default_names", "get", "headline", "names", "of",
           "register", "rows"]
