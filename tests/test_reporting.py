"""The reports of a tiny study end to end: the answer first, its numbers from the tables, diverged models, the
figures, the chosen configurations, and several studies side by side without TensorFlow."""

import io
import pathlib
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import tiny_study, without_imports

from widthvsprune import Recipe, Tuning, arms, run_study
from widthvsprune.analysis import compare, hypothesis
from widthvsprune.store import records

RELEASE_0_2 = pathlib.Path(__file__).resolve().parent / "data" / "release-0.2.0"
PROGRESS = re.compile(r"^\[(\d+|\?) left \| ")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny study whose recipes (the untuned controls) train at learning rate 50 and end at chance accuracy; the
    searches choose rates in their usual range (one allocation: no trial is spent on the recipe's rate with
    another allocation)."""
    out = tmp_path_factory.mktemp("results")
    study = tiny_study(baseline=Recipe(epochs=2, batch_size=64, learning_rate=50.0),
                       finetune=Recipe(epochs=2, batch_size=64, learning_rate=50.0),
                       tuning=Tuning(oracle="random", trials=2, controls=True, allocations=("uniform",)), engine="jax")
    stream = io.StringIO()
    result = run_study(study, out, stream=stream, workers=1)
    assert not result.failed
    return study, out / study.name, stream.getvalue()


def summary_lines(console):
    """The console's summary: what follows the progress lines."""
    lines = console.splitlines()
    last = max(i for i, line in enumerate(lines) if PROGRESS.match(line))
    return [line for line in lines[last + 1:] if line.strip()]


def tables(root):
    return {name: pd.read_csv(root / f"{name}.csv") for name in ("runs", "comparison", "tolerance", "iso_accuracy")}


def test_report_md_and_the_console_begin_with_the_answer(finished):
    study, root, console = finished
    report = (root / "report.md").read_text().splitlines()
    answer = report[2]
    assert report[0] == f"# {study.name}: large-sparse versus small-dense" and report[1] == ""
    assert answer.startswith(("The baseline (", "The study does not show the baseline (",
                              "The study cannot tell whether the baseline (", "The baseline recipe is under-trained"))
    assert summary_lines(console)[0] == answer
    assert "At equal nonzeros" in answer


def _numbers(text):
    return re.findall(r"\d[\d,]*(?:\.\d+)?", text)


def test_every_number_of_the_answer_comes_from_the_tables(finished):
    study, root, _ = finished
    t = tables(root)
    answer = (root / "report.md").read_text().splitlines()[2]
    head = arms.headline(study)
    allowed = {f"{100 * study.tolerance:g}"}
    tolerance = t["tolerance"][t["tolerance"].size_axis == "nonzero_params"]
    for r in tolerance.itertuples():
        allowed |= {f"{r.baseline_size:,.0f}", f"{r.ratio:.1f}", f"{100 * r.frontier_size / r.baseline_size:.0f}",
                    f"{100 * r.frontier_size / r.baseline_size:.1f}"}
        allowed |= set(_numbers(r.note)) if isinstance(r.note, str) else set()
        allowed |= {f"{100 * r.baseline_accuracy:.1f}", f"{100 * r.trained_baseline_accuracy:.1f}",
                    compare.points(r.reference_gain)}  # the under-trained baseline's sentence
    headline = t["comparison"][t["comparison"].contrast == head.name]
    for r in headline.itertuples():
        allowed |= {f"{100 * r.target_sparsity:.0f}", compare.points(abs(r.delta)), compare.points(r.detectable)}
    iso = t["iso_accuracy"][(t["iso_accuracy"].contrast == head.name) & (t["iso_accuracy"].status == "comparable")]
    for r in iso.itertuples():
        allowed |= {f"{100 * r.level:.1f}", f"{100 * r.below_baseline:g}", f"{r.arm_size:,.0f}",
                    f"{r.opponent_size:,.0f}", f"{r.ratio:.2f}", f"{r.ratio_ci_low:.2f}", f"{r.ratio_ci_high:.2f}",
                    f"{100 * r.ci_level:.0f}", f"{round(100 * r.below_baseline, 6):g}", f"{r.ratio_ci_low:g}"}
    unexplained = [n for n in _numbers(answer) if n not in allowed]
    assert not unexplained, (answer, unexplained)
    # And the other way round: what the headline's tolerance rows say is in the answer.
    for r in tolerance[tolerance.arm_tuning == "tuned"].itertuples():
        if r.status in (hypothesis.REACHED, hypothesis.BEYOND):
            assert f"down to {hypothesis.percent(r.frontier_size / r.baseline_size)} of its parameters" in answer
        else:
            assert "at no size tried" in answer


def test_a_recipe_at_learning_rate_50_ends_at_chance_and_its_comparisons_say_diverged(finished):
    _, root, console = finished
    t = tables(root)
    runs = t["runs"]
    assert runs[runs.tuning == "untuned"].diverged.all() and not runs[runs.tuning == "tuned"].diverged.any()
    assert (runs[runs.tuning == "untuned"].test_accuracy < 0.15).all()
    comparison = t["comparison"]
    untuned = ~comparison.contrast.isin(["tuned vs tuned", "best vs best"])
    assert set(comparison[untuned].verdict) == {"diverged"}
    # Each arm is represented in the headline by its better configuration on validation: here the tuned one.
    assert "diverged" not in set(comparison[~untuned].verdict)
    report = (root / "report.md").read_text()
    assert "ended at chance accuracy" in report and "the recipe at learning rate 50 failed" in report
    assert "+2 diverged" in console  # the 2x2 table of verdicts


def test_the_tables_have_their_documented_columns(finished):
    _, root, _ = finished
    t = tables(root)
    assert list(t["runs"].columns) == records.COLUMNS
    assert list(t["comparison"].columns) == compare.COMPARISON_COLUMNS
    assert list(t["tolerance"].columns) == hypothesis.TOLERANCE_COLUMNS
    assert list(t["iso_accuracy"].columns) == hypothesis.ISO_COLUMNS
    assert set(t["iso_accuracy"].resampled) == {"seeds and test examples"}
    frontier = pd.read_csv(root / "frontier.csv")
    assert list(frontier.columns) == compare.FRONTIER_COLUMNS + hypothesis.FRONTIER_COLUMNS
    assert frontier.tolerance_frontier.sum() == (t["tolerance"].query("size_axis == 'nonzero_params'").status
                                                 .isin([hypothesis.REACHED, hypothesis.BEYOND]).sum())


def test_the_figure_is_written_as_png_svg_and_pdf_and_embedded_in_the_report(finished):
    _, root, _ = finished
    assert (root / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (root / "frontier.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (root / "frontier.svg").read_bytes()[:2000]
    assert "](frontier.png)" in (root / "report.md").read_text()


def test_the_report_lists_the_chosen_configuration_of_every_arm_at_every_size_point(finished):
    study, root, _ = finished
    report = (root / "report.md").read_text()
    table = report[report.index("## Chosen configurations"):report.index("## Search compute")]
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    seen = {(r[0].lstrip("| "), r[1], r[2]) for r in rows}
    for name in ("pruned", "narrow"):
        for tuning in ("tuned", "untuned"):
            for target in study.sparsities:
                assert (arms.get(name).title, tuning, f"{target:g}") in seen
    assert ("wide dense", "tuned", "0") in seen
    assert "prunes the" in table and "allocation" in table and "output layer" in table
    assert "the widest model within" in table and "learning rate" in table


def test_the_console_ends_with_the_engine_and_where_report_md_and_the_figure_are(finished):
    _, root, console = finished
    lines = summary_lines(console)
    assert lines[-1] == f"figure:           {root / 'frontier.png'} (also .svg and .pdf)"
    assert lines[-2] == f"report.md:        {root / 'report.md'}"
    assert any(line == "engine:           jax (both arms)" for line in lines[-9:])


def test_several_studies_side_by_side_without_tensorflow(finished, tmp_path):
    _, root, _ = finished
    shutil.copytree(root, tmp_path / "a" / root.name)
    shutil.copytree(RELEASE_0_2 / "tiny", tmp_path / "b" / "tiny")  # written by 0.2: no predictions, no diverged
    env = without_imports(tmp_path, ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras", "jax"))
    code = ("import sys, widthvsprune\n"
            "summary = widthvsprune.compare_studies(sys.argv[1:3], out=sys.argv[3])\n"
            "print(list(summary.study))\n"
            "assert not {'tensorflow', 'tf_keras', 'keras', 'jax'} & {m.split('.')[0] for m in sys.modules}\n")
    folders = [tmp_path / "a" / root.name, tmp_path / "b" / "tiny"]
    done = subprocess.run([sys.executable, "-c", code, *map(str, folders), str(tmp_path / "summary")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(tmp_path / "summary" / "summary.csv")
    assert list(summary.study) == [root.name, "tiny"] and list(summary.seeds) == [2, 1]
    assert list(summary.engine) == ["jax", "jax"] and list(summary.test_examples) == [360, 360]
    assert summary.verdicts.iloc[1] == "0.5: pruned; 0.8: pruned"
    for name in ("summary.md", "summary.png", "summary.svg", "summary.pdf"):
        assert (tmp_path / "summary" / name).stat().st_size > 0
    assert not (tmp_path / "b" / "tiny" / "tolerance.csv").exists()  # nothing is written into the study folders
    cli = subprocess.run([sys.executable, "-m", "widthvsprune", "summary", *map(str, folders)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert f"summary.md:  {tmp_path / 'summary.md'}" in cli.stdout  # the folders' common parent by default
    old = hypothesis.iso_table(*_old_tables(tmp_path / "b" / "tiny"))
    assert set(old.resampled) == {"seeds only"}


def _old_tables(root):
    from widthvsprune.analysis import tables

    made = tables.tables(root)
    return (made.results.runs, [arms.headline(made.results.study)], made.results.study.tolerance,
            tables.predictions(root, made.results.runs), 100)


def test_summary_of_a_folder_that_is_no_study_is_refused_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "widthvsprune", "summary", str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: DIR: Expected a study results folder holding study.json. Received: "
                                   f"DIR={str(tmp_path)!r}")


def test_the_figure_legends_show_the_baseline_markers_and_hide_no_point(finished):
    import matplotlib.lines

    from widthvsprune import load_results
    from widthvsprune.analysis import plots

    study, root, _ = finished
    found = load_results(root)
    fig = plots.draw_frontier_figure(study, found.frontier, found.comparison, "nonzero_params", found.tolerance)
    top, bottom = fig.axes[0], fig.axes[1]
    fig.canvas.draw()
    entries = dict(zip(*reversed(plots.merged_legend(top))))
    baseline = [label for label in entries if label.endswith("%")]  # "baseline: 91.25%", its untuned control
    assert len(baseline) >= 2
    for label in baseline:  # the baseline's line and its marker, in one entry
        handle = entries[label]
        assert isinstance(handle, tuple) and any(isinstance(h, matplotlib.lines.Line2D) and h.get_marker() not in
                                                 (None, "None", "") for h in handle)
    legend = bottom.get_legend().get_window_extent()
    points = [tuple(p) for line in bottom.lines for p in line.get_transform().transform(line.get_xydata())]
    assert points and not any(legend.contains(x, y) for x, y in points)
    assert legend.x0 > bottom.get_window_extent().x1  # beside the panel
