"""The README matches the code: its field table, its command line and its commands, each run as shown."""

import ast
import dataclasses
import os
import pathlib
import re
import subprocess
import sys

import pandas as pd
import pytest

from widthvsprune import cli
from widthvsprune.study import Pruning, Recipe, Study, Tuning

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(language):
    """The README's fenced blocks of ``language`` (``""``: plain ones), in order."""
    found, current, kind = [], None, None
    for line in README.splitlines():
        if line.startswith("```") and current is None:
            current, kind = [], line[3:].strip()
        elif line.startswith("```"):
            if kind == language:
                found.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return found


def field_rows():
    """``{field: default cell}`` of the README's field table."""
    return dict(re.findall(r"^\| `([\w.]+)` \| (.+?) \| .+ \|$", README, re.M))


def documented_fields():
    out = {f.name: f for f in dataclasses.fields(Study)}
    for cls in (Recipe, Pruning, Tuning):
        out.update({f"{cls.__name__}.{f.name}": f for f in dataclasses.fields(cls) if f.repr})
    return out  # the fields' earlier names (Pruning.variant, Tuning.variants) are not repr'd and not documented


def test_the_field_table_has_every_field_of_the_study_and_its_parts_and_nothing_else():
    assert sorted(field_rows()) == sorted(documented_fields())


def test_every_literal_default_in_the_field_table_is_the_fields_default():
    for name, cell in field_rows().items():
        literal = re.fullmatch(r"`([^`]+)`", cell)
        if literal is None or literal.group(1).startswith(("Recipe(", "Pruning(", "Tuning(")):
            continue  # described in words ("the family's")
        field = documented_fields()[name]
        assert ast.literal_eval(literal.group(1)) == field.default, name


def test_the_command_line_block_names_every_option_of_the_parser_and_no_other():
    usage = next(b for b in blocks("") if b.startswith("widthvsprune run"))
    parser = cli._parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        lines = [line for line in usage.splitlines() if line.startswith(f"widthvsprune {name}")]
        assert lines, name
        start = usage.index(lines[0])
        following = usage[start:].split("\nwidthvsprune ")[0]
        documented = set(re.findall(r"(--[\w-]+|-v\b)", following))
        flags = {min(a.option_strings, key=len) if a.option_strings[0] == "-v" else
                 next(s for s in a.option_strings if s.startswith("--"))
                 for a in sub._actions if a.option_strings and a.dest != "help"}
        assert documented == flags, name


def test_the_install_commands_name_extras_that_exist():
    pyproject = (ROOT / "pyproject.toml").read_text()
    commands = "\n".join(blocks("bash"))
    for extra in re.findall(r'pip install -e "\.\[(\w+)\]"', commands):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), extra


def test_ci_runs_the_readmes_test_command():
    commands = "\n".join(blocks("bash"))
    command = re.search(r'pip install -e "\.\[test\]" && (pytest[^\n]*)', commands).group(1).strip()
    assert f"ruff check . && {command}\n" in (ROOT / ".ci" / "run").read_text()


def test_the_quickstart_command_names_a_study_that_plans_its_runs(tmp_path):
    commands = "\n".join(blocks("bash"))
    study = re.search(r"widthvsprune run (\S+)", commands).group(1)
    result = subprocess.run([sys.executable, "-m", "widthvsprune", "run", str(ROOT / study), "--dry-run", "--out",
                             str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "nothing was trained (--dry-run)" in result.stdout


def test_the_keras_model_example_runs_with_import_keras_and_no_keras_backend_set(tmp_path):
    """The README's own-model example, run in a fresh Python without KERAS_BACKEND, its study made smaller to fit
    the suite (one seed, a one-epoch fine-tune, one trial, no controls): Keras 3 starts on whichever backend it
    picks and trains the user's model; the study starts from its saved weights and still trains on the jax
    engine."""
    example = next(b for b in blocks("python") if "pretrained=" in b)
    assert "KERAS_BACKEND" not in example and len(example.strip().splitlines()) <= 20
    small = example.replace("seeds=(0, 1))", "seeds=(0,), finetune=Recipe(epochs=1), "
                                              "tuning=Tuning(trials=1, controls=False))")
    assert small != example
    small = "from widthvsprune import Recipe, Tuning\n" + small
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", small], capture_output=True, text=True, timeout=600, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    report = (tmp_path / "results" / "my_cnn" / "report.md").read_text()
    runs = pd.read_csv(tmp_path / "results" / "my_cnn" / "runs.csv")
    assert set(runs.engine) == {"jax"} and report.startswith("# my_cnn: large-sparse versus small-dense")
    narrow = runs[runs.arm == "narrow"]
    eval_rows = narrow[narrow.role == "eval"]
    assert len(eval_rows) == 2 and (eval_rows.total_params <= eval_rows.budget).all()  # within the pruned nonzeros
    assert (narrow[narrow.role == "bracket"].total_params > narrow[narrow.role == "bracket"].budget).all()
    # The default schedule prunes gradually: no warning before training, and masks updated at least ten times.
    assert "warning: pruning.frequency" not in result.stdout
    assert (runs[runs.arm == "pruned"].mask_updates >= 10).all()
    assert "little chance to recover" not in report
    assert (tmp_path / "my_cnn_pruned.keras").is_file()  # the pruned model, taken home
    baseline = runs[runs.arm == "baseline"]
    assert len(baseline) == 1 and "the trained weights" in report  # the saved model, evaluated as it is


@pytest.mark.parametrize("page", sorted(re.findall(r"\]\((docs/[\w-]+\.md)\)", README)))
def test_every_linked_page_exists(page):
    assert (ROOT / page).is_file()
