"""A study's configuration: the :class:`Study` dataclass and its parts, study files and ``--set`` overrides."""

from widthvsprune.study.config import SUBCONFIGS, Study, study_from_dict
from widthvsprune.study.loading import apply_overrides, load_study
from widthvsprune.study.recipes import Pruning, Recipe, Tuning

__all__ = ["SUBCONFIGS", "Pruning", "Recipe", "Study", "Tuning", "apply_overrides", "load_study", "study_from_dict"]
