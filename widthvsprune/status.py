"""The statuses runs, searches and size points can have: one definition each.

The values are the strings the store writes (``record.json``,
``search/result.json``), so a folder written by an earlier release reads the
same.
"""

import dataclasses
import enum


class RunStatus(str, enum.Enum):
    """What the store holds for one run."""

    OK = "ok"  # trained; its files match their checksums
    FAILED = "failed"  # tried and failed; tried again by the next run command
    MISSING = "missing"  # not trained yet
    INVALID = "invalid"  # a file is unreadable or changed: trained again


class SearchStatus(str, enum.Enum):
    """How a search ended."""

    OK = "ok"
    NO_FIT = "no-narrow-fits"  # not even the family's smallest model fits the budget


@dataclasses.dataclass(frozen=True)
class Skip:
    """Why an arm has no model at a size point.

    Attributes:
        status: :data:`NO_PRUNED` or :attr:`SearchStatus.NO_FIT`.
        note: the reason in words.
    """

    status: str
    note: str


NO_PRUNED = "no-pruned-model"  # every pruned run of the size point failed
