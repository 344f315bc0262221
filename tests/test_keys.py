"""The run-key policy: a new field with a default keeps old results findable; any change gets a new key."""

import dataclasses

from conftest import tiny_study

from widthvsprune import keys, store
from widthvsprune.arms import baseline as baseline_arm
from widthvsprune.store import records


@dataclasses.dataclass(frozen=True)
class RecipeV1:
    epochs: int = 10
    learning_rate: float = 1e-3


@dataclasses.dataclass(frozen=True)
class RecipeV2:
    """RecipeV1 after a release added warm-up: old runs trained without it."""

    epochs: int = 10
    learning_rate: float = 1e-3
    warmup_epochs: int = keys.added_field(0)


def key_of(recipe):
    return keys.run_key({"arm": "baseline", "recipe": keys.config_dict(recipe)}, "baseline")


def test_adding_a_field_with_a_default_keeps_the_old_key_and_finds_the_old_run(tmp_path):
    old = key_of(RecipeV1())
    folder = store.seed_dir(tmp_path, old, 0)
    store.write_json(store.record_json(folder), {"status": "failed", "arm": "baseline", "seed": 0})
    new = key_of(RecipeV2())
    assert new == old
    assert records.read_run(store.seed_dir(tmp_path, new, 0)).status == "failed"  # found again


def test_a_changed_value_never_reuses_another_configurations_results():
    assert key_of(RecipeV2(warmup_epochs=2)) != key_of(RecipeV1())
    assert key_of(RecipeV2(epochs=11)) != key_of(RecipeV2())
    assert key_of(RecipeV2(learning_rate=1e-3 + 1e-12)) != key_of(RecipeV2())


def test_the_absent_value_can_differ_from_the_default():
    @dataclasses.dataclass(frozen=True)
    class RecipeV3:
        epochs: int = 10
        learning_rate: float = 1e-3
        warmup_epochs: int = keys.added_field(1, absent=0)  # a new default, old runs had none

    assert key_of(RecipeV3(warmup_epochs=0)) == key_of(RecipeV1())
    assert key_of(RecipeV3()) != key_of(RecipeV1())


def test_keys_hash_the_canonical_configuration_with_the_key_version():
    config = {"b": [1, 2], "a": {"y": 0.5, "x": None}}
    assert keys.canonical(config) == '{"a":{"x":null,"y":0.5},"b":[1,2]}'
    assert keys.run_key(config, "p").startswith("p-") and len(keys.run_key(config, "p")) == 2 + 12
    assert keys.run_key(config) == keys.run_key({"a": {"x": None, "y": 0.5}, "b": [1, 2]})


def test_the_quickstart_baseline_configuration_is_pinned():
    # A change here changes every key: it must come with a KEY_VERSION bump or an added_field.
    study = tiny_study(engine="tf_keras")
    assert keys.canonical(baseline_arm.config(study)) == (
        '{"arm":"baseline","data":{"data_seed":0,"dataset":"digits","validation_fraction":0.1},"engine":"tf_keras",'
        '"family":"mlp","recipe":{"batch_size":64,"epochs":2,"learning_rate":0.001,"optimizer":"adam"},'
        '"tuning":"untuned","widths":[24,12]}'
    )
