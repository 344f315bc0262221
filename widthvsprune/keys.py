"""Run keys: the folder name of a run is a hash of its canonical configuration.

The policy, pinned by tests:

- A run's key is a readable prefix plus the first 12 hex digits of the
  SHA-256 of its configuration as canonical JSON (sorted keys, no spaces).
  The configuration holds every field of every config dataclass the run
  depends on, and :data:`KEY_VERSION`. So changing any value gives another
  key, and a run never reuses another configuration's results.
- A field added to a config dataclass after a study may already have run is
  declared with :func:`added_field`. While it holds the value that reproduces
  the old behaviour (``absent``), it is left out of the configuration, so
  every run made before the field existed keeps its key and is found again.
  Set to anything else, it is hashed like every other field.
- The price: ``absent`` is fixed forever. Changing a field's *default* later
  is safe (old runs hashed the old value explicitly, or were made with
  ``absent``), but changing what ``absent`` means is not.
- A field renamed after results may exist is declared with
  :func:`renamed_field`: it is hashed (and written to ``config.json``) under
  its old name, with its values' old spellings, so the runs made before the
  rename keep their keys. The old name stays reserved in that configuration.
- :data:`KEY_VERSION` changes only when the configuration's layout changes in
  a way no added field can express; then old results are no longer found,
  and the release notes must say so.
"""

import dataclasses
import hashlib
import json

KEY_VERSION = 2
_ABSENT = "widthvsprune.key.absent"
_KEYED_AS = "widthvsprune.key.name"
_OLD_VALUES = "widthvsprune.key.values"


def added_field(default, absent=dataclasses.MISSING):
    """A dataclass field added after results may exist: hashed only when it differs from ``absent``.

    Args:
        default: the field's default.
        absent: the value that behaves as the code did before the field
            existed (``default`` unless given).

    Example:

    ```python
    @dataclasses.dataclass(frozen=True)
    class Recipe:
        epochs: int = 10
        warmup_epochs: int = added_field(0)  # old runs trained without warm-up
    ```
    """
    absent = default if absent is dataclasses.MISSING else absent
    return dataclasses.field(default=default, metadata={_ABSENT: absent})


def with_absent(cls, data):
    """``data`` (a config dict read back) with every field of ``cls`` it lacks set to that field's ``absent`` value.

    A configuration written before a field existed behaved as ``absent`` says
    (:func:`added_field`), whatever the field's default is now.
    """
    out = dict(data)
    for field in dataclasses.fields(cls):
        if field.name not in out and _ABSENT in field.metadata:
            out[field.name] = field.metadata[_ABSENT]
    return out


def renamed_field(default, old_name, old_values=None):
    """A dataclass field renamed after results may exist: hashed under ``old_name``, values spelled the old way.

    Args:
        default: the field's default.
        old_name: the name results made before the rename used.
        old_values: ``{new spelling: old spelling}`` of values renamed with it
            (a tuple value maps each item).

    Example:

    ```python
    @dataclasses.dataclass(frozen=True)
    class Pruning:
        allocation: str = renamed_field("uniform", "variant", {"uniform": "layerwise"})
    ```
    """
    return dataclasses.field(default=default, metadata={_KEYED_AS: old_name, _OLD_VALUES: dict(old_values or {})})


def old_spelling(value, old_values):
    """``value`` (or each item of a tuple or list) in the spelling results made before a rename used."""
    if isinstance(value, (list, tuple)):
        return [old_values.get(v, v) for v in value]
    return old_values.get(value, value)


def config_dict(obj):
    """The JSON-ready form of a config dataclass (nested ones included), for hashing and config.json.

    Fields declared with :func:`added_field` are left out while they hold
    their ``absent`` value; fields declared with :func:`renamed_field` are
    written under their old name and spelling.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for field in dataclasses.fields(obj):
            value = getattr(obj, field.name)
            if _ABSENT in field.metadata and value == field.metadata[_ABSENT]:
                continue
            if _KEYED_AS in field.metadata:
                out[field.metadata[_KEYED_AS]] = jsonable(old_spelling(value, field.metadata[_OLD_VALUES]))
                continue
            out[field.name] = config_dict(value)
        return out
    return jsonable(obj)


def jsonable(value):
    """Tuples to lists and keys to strings, recursively: the form JSON gives back."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_dict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def canonical(config):
    """The canonical text of a JSON-ready config: sorted keys, no spaces."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def run_key(config, prefix=""):
    """A stable key for a run configuration (without its seed): ``<prefix>-<12 hex digits>``.

    Example:

    ```python
    run_key({"arm": "baseline", "recipe": {"epochs": 3}}, "baseline")  # 'baseline-' + 12 hex digits
    ```
    """
    digest = hashlib.sha256(canonical({**config, "key_version": KEY_VERSION}).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}" if prefix else digest
