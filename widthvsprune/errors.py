"""Exceptions raised by widthvsprune.

Every error that a user can cause names the field, the value received and
what is accepted, in the Keras style: ``Expected ... Received: name=value``.
"""

import difflib
import pathlib


class WidthVsPruneError(Exception):
    """Base class of every error widthvsprune raises on purpose."""


class StudyError(WidthVsPruneError, ValueError):
    """A study, a study file or an override is invalid.

    Args:
        problems: one line per problem; all of them are reported at once.
    """

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DataError(WidthVsPruneError, ValueError):
    """A dataset cannot be loaded or is malformed."""


class ResultsError(WidthVsPruneError):
    """The results folder is unusable or holds conflicting records."""


def problem(field, expected, value):
    """One problem line in the Keras style: ``field: Expected ... Received: field=value``."""
    return f"{field}: Expected {expected}. Received: {field}={value!r}"


def suggest(name, choices):
    """``; did you mean 'x'?`` for a near-miss ``name`` among ``choices`` (empty when none is close)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def near_path(path, keep=None):
    """``; did you mean 'dir/x'?`` for a path that does not exist but is close to one beside it (empty otherwise).

    ``keep`` filters the candidates (a study file, a results folder).
    """
    path = pathlib.Path(path)
    parent = path.parent
    if not parent.is_dir():
        return ""
    names = [p.name for p in parent.iterdir() if keep is None or keep(p)]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    return f"; did you mean {str(parent / close[0])!r}?" if close else ""
