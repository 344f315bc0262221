"""Exceptions raised by widthvsprune.

Every error that a user can cause names the field, the value received and
what is accepted, in the Keras style: ``Expected ... Received: name=value``.
"""


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
