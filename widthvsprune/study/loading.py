"""Study files and ``--set`` overrides.

A study file is a Python file that defines ``STUDY = Study(...)``;
:func:`load_study` imports it and reports a broken file in one line.
:func:`apply_overrides` applies ``key=value`` overrides, checking every key
and value against the study's dataclasses.
"""

import ast
import collections
import contextlib
import dataclasses
import hashlib
import importlib.util
import pathlib
import re
import sys
import traceback
import typing
from typing import Tuple

from widthvsprune.errors import StudyError, near_path, problem, suggest
from widthvsprune.quiet import native_output_hidden
from widthvsprune.study.config import SUBCONFIGS, Study
from widthvsprune.study.recipes import is_int, is_number

# --------------------------------------------------------------------------
# Overrides: ``--set key=value``.

def _hint_name(hint):
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"None or {_hint_name(args[0])}"
    if origin in (tuple, Tuple):
        return f"a list of {_hint_name(typing.get_args(hint)[0])}s (in brackets, [x] for one)"
    return getattr(hint, "__name__", str(hint))


def _coerce(value, hint):
    """Returns ``(ok, value)``: ``value`` converted to ``hint`` if it fits."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        if value is None:
            return True, None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, args[0])
    if origin in (tuple, Tuple):
        if not isinstance(value, (list, tuple)):  # one value is a list of one: [0.5], never a bare 0.5
            return False, value
        items = value
        item = typing.get_args(hint)[0]
        converted = []
        for v in items:
            ok, v = _coerce(v, item)
            if not ok:
                return False, value
            converted.append(v)
        return True, tuple(converted)
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return is_int(value), value
    if hint is float:
        return is_number(value), float(value) if is_number(value) else value
    if hint is str:
        return isinstance(value, str), value
    return True, value


def _parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(study, overrides):
    """Returns ``study`` with ``key=value`` overrides applied.

    Keys name any study field, with a dot for nested ones
    (``finetune.epochs=3``). Values are Python literals (``[0, 1]``, ``0.5``,
    ``None``); anything else is taken as a string.

    Raises:
        StudyError: listing every unknown key, wrong type and invalid value.
    """
    problems, top, nested = [], {}, {}
    hints = typing.get_type_hints(Study)
    for item in overrides:
        if "=" not in item:
            problems.append(problem("--set", "key=value", item))
            continue
        key, text = item.split("=", 1)
        key, value = key.strip(), _parse_value(text.strip())
        parent, _, child = key.partition(".")
        if child:
            cls = SUBCONFIGS.get(parent)
            sub_hints = typing.get_type_hints(cls) if cls else {}
            if child not in sub_hints:
                known = sorted(f"{p}.{f}" for p, c in SUBCONFIGS.items() for f in typing.get_type_hints(c))
                problems.append(problem("--set", f"a known field, one of {known}", key) + suggest(key, known))
                continue
            ok, value = _coerce(value, sub_hints[child])
            if not ok:
                problems.append(problem(key, _hint_name(sub_hints[child]), value))
                continue
            nested.setdefault(parent, {})[child] = value
        else:
            if key not in hints:
                known = sorted(hints) + sorted(f"{p}.{f}" for p, c in SUBCONFIGS.items()
                                               for f in typing.get_type_hints(c))
                problems.append(problem("--set", f"a known field, one of {sorted(hints)}", key) + suggest(key, known))
                continue
            if key in SUBCONFIGS:
                problems.append(problem("--set", f"a field of {key} such as {key}.epochs", key))
                continue
            ok, value = _coerce(value, hints[key])
            if not ok:
                problems.append(problem(key, _hint_name(hints[key]), value))
                continue
            top[key] = value
    for parent, values in nested.items():
        top[parent] = dataclasses.replace(getattr(study, parent), **values)
    if "family" in top and "widths" not in top:
        top["widths"] = None  # the new family's default widths
    if problems:
        try:
            dataclasses.replace(study, **top)
        except StudyError as error:
            problems += error.problems
        raise StudyError(problems)
    return dataclasses.replace(study, **top)


# --------------------------------------------------------------------------
# Study files.


_KEYWORD = re.compile(r"unexpected keyword argument '(\w+)'")


def _keyword_hint(error):
    """`` Did you mean ...?`` for a misspelled keyword of a Study, Recipe, Pruning or Tuning."""
    match = _KEYWORD.search(str(error)) if isinstance(error, TypeError) else None
    if match is None:
        return ""
    fields = [f.name for cls in (Study, *set(SUBCONFIGS.values())) for f in dataclasses.fields(cls)]
    return suggest(match.group(1), fields)


@contextlib.contextmanager
def fresh_layer_names():
    """Keras's automatic layer names (``dense``, ``dense_1``, ...) counted from zero inside, as in a new process.

    Keras 3 and tf_keras number the layers they name; a file that builds a
    model gets the same names on every load. The counters in use before are
    put back afterwards. Imports no Keras: one not imported yet starts from
    zero anyway.
    """
    from widthvsprune.adapters import tf_keras as tf_keras_adapter

    keras_counters = keras_adapter = None
    if "keras" in sys.modules:
        from widthvsprune.adapters import keras as keras_adapter

        keras_counters = keras_adapter.layer_name_counters()
        keras_adapter.set_layer_name_counters(collections.defaultdict(int))
    legacy_counters = tf_keras_adapter.take_layer_name_counters()
    try:
        yield
    finally:
        if keras_adapter is not None:
            keras_adapter.set_layer_name_counters(keras_counters)
        tf_keras_adapter.restore_layer_name_counters(legacy_counters)


def load_study(path, need_study=True):
    """Loads ``STUDY`` from a Python study file.

    A study whose ``name`` is empty is named after the file. With
    ``need_study=False`` the file only has to import cleanly (the families it
    registers are then registered), and the result is its ``STUDY`` or ``None``.

    Raises:
        StudyError: if the file does not exist, raises on import, or does not
            define a ``Study`` named ``STUDY``.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise StudyError(problem("study", "an existing study file (.py)", str(path)) + near_path(path))
    # The same name in every process (Python's str hash is not), for the classes a study file defines.
    module_name = f"_widthvsprune_study_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        # A study file that imports Keras may start TensorFlow: keep its chatter off. Its layers get the names of a
        # first load however often it is loaded, so a model it derives a family from has the same config (and run
        # keys) here as in the study's other processes.
        with native_output_hidden(), fresh_layer_names():
            spec.loader.exec_module(module)
    except StudyError as error:
        raise StudyError([f"{path}: {p}" for p in error.problems]) from None
    except Exception as error:  # the user's file raised: report it in one line
        where = traceback.extract_tb(error.__traceback__)[-1]
        raise StudyError(
            f"study: Expected a study file that imports cleanly. Received: study={str(path)!r}, "
            f"which raised {type(error).__name__}: {error} (line {where.lineno}){_keyword_hint(error)}"
        ) from None
    finally:
        sys.modules.pop(module_name, None)
    study = getattr(module, "STUDY", None)
    if not need_study and not isinstance(study, Study):
        return None
    if not isinstance(study, Study):
        raise StudyError(
            f"study: Expected the file to define STUDY = Study(...). Received: study={str(path)!r}, "
            f"where STUDY is {type(study).__name__ if study is not None else 'missing'}"
        )
    if not study.name:
        study = dataclasses.replace(study, name=re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem))
    return study
