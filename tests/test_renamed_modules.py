"""Renamed modules: the old import paths still work for one release, with a DeprecationWarning."""

import importlib
import sys

import pytest

from widthvsprune import keys, status
from widthvsprune.families import inputs, layer_counts
from widthvsprune.pruning import kernel_masks
from widthvsprune.run import fresh_process
from widthvsprune.study import loading

SHIMS = ("run/elsewhere", "pruning/host", "study/files", "families/counting", "families/blocks", "plan/keys",
         "plan/status")


def fresh_import(name):
    sys.modules.pop(name, None)
    with pytest.warns(DeprecationWarning, match=rf"{name} is deprecated"):
        return importlib.import_module(name)


@pytest.mark.parametrize("old,new", [
    ("widthvsprune.run.elsewhere", fresh_process),
    ("widthvsprune.pruning.host", kernel_masks),
    ("widthvsprune.study.files", loading),
    ("widthvsprune.plan.keys", keys),
    ("widthvsprune.plan.status", status),
])
def test_a_renamed_modules_old_path_is_the_new_module_with_a_warning(old, new):
    assert fresh_import(old) is new


def test_the_old_family_count_modules_give_the_same_functions_with_a_warning():
    counting = fresh_import("widthvsprune.families.counting")
    assert (counting.dense, counting.conv, counting.spatial) == (layer_counts.dense, layer_counts.conv,
                                                                  inputs.spatial)
    blocks = fresh_import("widthvsprune.families.blocks")
    assert (blocks.conv_no_bias, blocks.depthwise, blocks.batch_norm) == (
        layer_counts.conv_no_bias, layer_counts.depthwise, layer_counts.batch_norm)
    assert (blocks.sequence, blocks.image, blocks.input_layers) == (inputs.sequence, inputs.image,
                                                                    inputs.input_layers)


def test_no_module_of_the_package_imports_an_old_path():
    import pathlib

    package = pathlib.Path(kernel_masks.__file__).resolve().parent.parent
    old = ("run.elsewhere", "pruning.host", "study.files", "families.counting", "families.blocks", "plan.keys",
           "plan.status", "run import elsewhere", "pruning import host", "study import files",
           "families import counting", "families import blocks", "plan import keys", "plan import status")
    found = [f"{p.relative_to(package.parent)}:{i}" for p in package.rglob("*.py")
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if line.lstrip().startswith(("import ", "from ")) and any(f"widthvsprune.{o}" in line for o in old)
             and p.relative_to(package).with_suffix("").as_posix() not in SHIMS]
    assert found == []
