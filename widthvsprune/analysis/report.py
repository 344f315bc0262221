"""Tables, figures and the verdict, derived from the run records alone.

Everything written here can be regenerated at any time with
``widthvsprune report DIR``: ``runs.csv`` (one row per trained model),
``comparison.csv`` (one row per contrast and size point),
``frontier.csv`` (one row per arm and size point), ``tolerance.csv`` (each
arm's tolerance frontier per size axis), ``iso_accuracy.csv`` (the nonzeros
each arm needs at equal accuracy), ``frontier.png`` / ``.svg`` / ``.pdf`` and
``report.md``. Both ``report.md`` and the console summary begin with the
study's answer in words (:func:`widthvsprune.analysis.hypothesis.answer`).
Deltas and intervals are shown in percentage points; the CSV files keep
fractions. No framework is imported.
"""

import math
import sys

from widthvsprune import arms, store
from widthvsprune.analysis import compare, hypothesis
from widthvsprune.analysis.tables import tables

#: The tables a study folder holds, in the order the console lists them.
CSV_FILES = ("runs.csv", "comparison.csv", "frontier.csv", "tolerance.csv", "iso_accuracy.csv")
FIGURE = "frontier.png"
CONSOLE_LEVELS = 6  # iso-accuracy levels the console shows


def write_reports(root, size="nonzero_params", stream=None, plots=True):
    """Regenerates every table and figure of a study folder from its records, and prints the verdict.

    Returns:
        A :class:`widthvsprune.analysis.tables.Results`.
    """
    stream = stream or sys.stdout
    made = tables(root, size)
    found = made.results
    study, runs, comparison, frontier = found.study, found.runs, found.comparison, found.frontier
    for name, frame in zip(CSV_FILES, (runs, comparison, frontier, found.tolerance, found.iso)):
        store.write_csv(store.table(root, name), frame)
    drawn = False
    if plots and not frontier.empty:
        from widthvsprune.analysis import plots as figures

        figures.frontier_figure(study, frontier, comparison, size, root, found.tolerance)
        drawn = True
    store.write_bytes(store.table(root, "report.md"), markdown(made, size, drawn).encode())
    print("\n" + text(study, comparison, made.compute, made.warnings, found), file=stream)
    if made.failures:
        print(f"\n{len(made.failures)} run(s) failed (retried on the next run):", file=stream)
        for r in made.failures:
            print(f"  {r.get('label', r.get('arm'))}: {r.get('error')}", file=stream)
    print("\n" + "\n".join(files_text(root, runs, drawn)), file=stream)
    return found


def engines_of(runs):
    """The engines that trained a study's models, as text (``jax``; several only if records disagree)."""
    found = sorted({str(e) for e in runs.engine.dropna()}) if "engine" in runs else []
    return ", ".join(found) or "unknown"


def files_text(root, runs, drawn):
    """The console's last lines: the engine, then where every table, report.md and the figure are."""
    names = ["engine", *CSV_FILES, "report.md"] + (["figure"] if drawn else [])
    width = max(len(n) for n in names) + 2
    lines = [f"{'engine:':<{width}}{engines_of(runs)} (both arms)"]
    for name in CSV_FILES:
        extra = f" ({len(runs)} models)" if name == "runs.csv" else ""
        lines.append(f"{name + ':':<{width}}{store.table(root, name)}{extra}")
    lines.append(f"{'report.md:':<{width}}{store.table(root, 'report.md')}")
    if drawn:
        lines.append(f"{'figure:':<{width}}{store.table(root, FIGURE)} (also .svg and .pdf)")
    return lines


# --------------------------------------------------------------------------
# Text.

def _has_bracket(rows):
    return rows.above_params.notna().any() if "above_params" in rows else False


def _reference(found):
    """Which configuration the wide dense reference is, in words."""
    tolerance = found.tolerance
    name = str(tolerance.reference.iloc[0]) if "reference" in tolerance and len(tolerance) else ""
    arm, _, tuning = name.partition(" ")
    if not arm:
        return "the better on validation of the baseline and the baseline fine-tuned as long as the arms"
    return (f"the {arms.get(arm).title} model {'as tuned' if tuning == 'tuned' else 'as written'}, the best on "
            "validation of the baseline and the baseline fine-tuned as long as the arms, each tuned or as written")


#: How the headline names the configuration that stood for an arm at a size point.
USED = {"tuned": "search", "untuned": "recipe"}


def _chooses(contrast):
    """Whether a contrast's sides are each arm's better configuration (its rows then say which one)."""
    return compare.BEST in (contrast.arm_tuning, contrast.opponent_tuning)


def _headers(contrast, rows, level=None):
    arm, opponent = contrast.arm, contrast.opponent
    ci = f"{level:.2%} CI (pts)" if level is not None else "CI (pts)"
    out = ["sparsity", "nonzeros", opponent, "fill", f"{arm} acc", f"{opponent} acc", "delta (pts)", ci, "verdict"]
    if _has_bracket(rows):
        out[-1:-1] = ["above", "above fill", "above acc", "delta above (pts)"]
    if _chooses(contrast):
        out[-1:-1] = [f"{arm} used", f"{opponent} used"]
    return out


def _cells(r, bracket=False, chooses=False):
    """One comparison row as text cells, shared by the terminal table and report.md."""
    fill = f"{r.opponent_fill:.0%}" if math.isfinite(r.opponent_fill) else ""
    cells = [f"{r.target_sparsity:g}", _int(r.arm_nonzero_params), _int(r.opponent_params), fill,
             _pct(r.arm_test_accuracy), _pct(r.opponent_test_accuracy), _points(r.delta),
             _interval(r.delta_ci_low, r.delta_ci_high), r.verdict]
    if bracket:
        above = math.isfinite(r.above_params)
        cells[-1:-1] = [_int(r.above_params), f"{r.above_fill:.0%}" if above else "",
                        _pct(r.above_test_accuracy) if above else "", _points(r.above_delta) if above else ""]
    if chooses:
        cells[-1:-1] = [USED.get(str(getattr(r, side)), "") for side in ("arm_configuration",
                                                                          "opponent_configuration")]
    return cells


def _interval(low, high):
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]" if math.isfinite(low) else "n/a"


def _aligned(rows, left_first=False):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    last = len(rows[0]) - 1

    def fit(i, cell, w):
        return cell.ljust(w) if i == 0 and left_first else cell if i == last else cell.rjust(w)

    return "\n".join("  ".join(fit(i, cell, w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def comparison_rows(comparison, contrast):
    """A contrast's comparison as rows of text cells, its headers first."""
    rows = comparison[comparison.contrast == contrast.name]
    level = rows.ci_level.dropna()
    bracket = _has_bracket(rows)
    return [_headers(contrast, rows, level.iloc[0] if len(level) else None)] + [
        _cells(r, bracket, _chooses(contrast)) for _, r in rows.iterrows()]


def comparison_text(comparison, contrast):
    return _aligned(comparison_rows(comparison, contrast))


def grid(study, comparison):
    """The 2x2 table of verdict counts of the headline's tunings: rows the arm's tuning, columns the opponent's."""
    head = arms.headline(study)
    counts = compare.tally(comparison)
    by_tunings = {(c.arm_tuning, c.opponent_tuning): c.name for c in arms.contrasts(study)
                  if c.headline or c.control_of == head.name}

    def cell(a, o):
        c = counts.get(by_tunings.get((a, o)))
        if c is None:
            return "-"
        extra = [f"+{c[v]} {word}" for v, word in ((compare.UNDERFILLED, "inconclusive"),
                                                    (compare.DIVERGED, "diverged"),
                                                    (compare.UNRELIABLE, "unreliable")) if c.get(v)]
        return (f"{c.get(head.arm, 0)} / {c.get(head.opponent, 0)} / {c.get(compare.TIE, 0)}"
                + (f" ({', '.join(extra)})" if extra else ""))

    rows = [["", f"{head.opponent} tuned", f"{head.opponent} untuned"]]
    rows += [[f"{head.arm} {a}", cell(a, "tuned"), cell(a, "untuned")] for a in ("tuned", "untuned")]
    return rows


def compute_rows(compute):
    rows = [["arm", "searches", "trials", "epochs", "seconds"]]
    rows += [[r.arm, str(r.searches), str(r.trials), f"{r.epochs:.0f}", f"{r.seconds:.1f}"]
             for r in compute.itertuples()]
    return rows


def tolerance_rows(tolerance, axis="nonzero_params"):
    """The tolerance frontiers on one size axis as rows of text cells."""
    rows = [["arm", "tuning", "status", "sparsity", "widths", "size", "of baseline", "compression", "drop (pts)",
             "bound (pts)"]]
    for r in tolerance[tolerance.size_axis == axis].itertuples():
        found = math.isfinite(r.frontier_size)
        rows.append([arms.get(r.arm).title, r.arm_tuning, r.status, f"{r.target_sparsity:g}" if found else "",
                     r.widths, _int(r.frontier_size) if found else "",
                     f"{r.frontier_size / r.baseline_size:.0%}" if found else "",
                     (">= " if r.status == hypothesis.BEYOND else "") + f"{r.ratio:.2f}x" if found else "",
                     _points(r.drop) if found else "", _points(r.drop_upper) if found else ""])
    return rows


def tolerance_notes(tolerance, axis="nonzero_params"):
    """What decided each tolerance frontier on ``axis``, one line per arm and tuning."""
    return [f"- {arms.get(r.arm).title} {r.arm_tuning}: {r.note}"
            for r in tolerance[tolerance.size_axis == axis].itertuples() if isinstance(r.note, str) and r.note]


def axes_rows(tolerance):
    """Each arm's compression ratio within tolerance on every size axis, as rows of text cells."""
    axes = list(dict.fromkeys(tolerance.size_axis))
    rows = [["arm", "tuning", *axes]]
    for (arm, tuning), group in tolerance.groupby(["arm", "arm_tuning"], sort=False):
        ratios = dict(zip(group.size_axis, zip(group.ratio, group.status)))
        rows.append([arms.get(arm).title, tuning] + [
            "" if not math.isfinite(ratios[a][0]) else
            (">= " if ratios[a][1] == hypothesis.BEYOND else "") + f"{ratios[a][0]:.2f}x" for a in axes])
    return rows


def iso_rows(iso, contrast):
    """One contrast's iso-accuracy comparison as rows of text cells (comparable levels only)."""
    rows = [["accuracy", "under baseline (pts)", f"{contrast.arm} nonzeros", f"{contrast.opponent} nonzeros",
             "ratio", "interval"]]
    for r in iso[(iso.contrast == contrast.name) & (iso.status == "comparable")].itertuples():
        rows.append([f"{100 * r.level:.2f}%", compare.points(r.below_baseline), f"{r.arm_size:,.0f}",
                     f"{r.opponent_size:,.0f}", f"{r.ratio:.2f}x", f"[{_times(r.ratio_ci_low)}, "
                     f"{_times(r.ratio_ci_high)}]"])
    return rows


def _times(value):
    return "inf" if math.isinf(value) else "0" if value == 0 else f"{value:.2f}x"


def _available(study):
    """The examples the study's dataset has in all, when known (the power advice then says when it asks for
    more)."""
    from widthvsprune import data

    return data.total_examples(study.dataset)


def headline_words(study, head):
    """How the headline's two sides were chosen, in a clause."""
    searched = f"each arm tuned with {study.tuning.trials} {study.tuning.oracle} trials per search"
    if not _chooses(head):
        return searched
    return (f"{searched}, and at each size represented by its better configuration on mean validation accuracy, "
            "the search's or the recipe's (`used`)")


def text(study, comparison, compute, warnings, found=None):
    """What ``run`` and ``report`` print: the answer, the headline table and verdict, the 2x2 table, the tolerance
    frontiers, the iso-accuracy comparison, the search compute and the warnings."""
    head = arms.headline(study)
    out = []
    if found is not None and found.answer:
        out += [found.answer, ""]
    out += [f"{head.name} ({headline_words(study, head)}; deltas in percentage points):",
            comparison_text(comparison, head), "",
            compare.sentence(comparison, head.name, study.min_effect, _available(study)) + "."]
    if any(c.control_of == head.name for c in arms.contrasts(study)) and len(set(comparison.contrast)) > 1:
        out += ["", f"Verdicts by tuning, {head.arm} wins / {head.opponent} wins / ties over the size points:",
                _aligned(grid(study, comparison), left_first=True)]
    for contrast in arms.contrasts(study):
        if not contrast.headline and contrast.control_of is None and (comparison.contrast == contrast.name).any():
            out += ["", f"{contrast.name}:", comparison_text(comparison, contrast), "",
                    compare.sentence(comparison, contrast.name, study.min_effect, _available(study)) + "."]
    if found is not None and found.tolerance is not None and len(found.tolerance):
        out += ["", f"Tolerance frontier: the smallest size within {hypothesis.tolerance_words(study.tolerance)} of "
                "the wide dense reference (one-sided 95% bound, sizes tested from the largest down):",
                _aligned(tolerance_rows(found.tolerance), left_first=True)] + tolerance_notes(found.tolerance)
    if found is not None and found.iso is not None:
        rows = iso_rows(found.iso, head)
        if len(rows) > 1:
            resampled = found.iso.resampled.iloc[0]
            more = f" (the first {CONSOLE_LEVELS} of {len(rows) - 1}; all in iso_accuracy.csv)" \
                if len(rows) > CONSOLE_LEVELS + 1 else ""
            out += ["", f"{head.name} at equal accuracy{more}: nonzeros each needs (interpolated on log size), "
                    f"their ratio and its 95% bootstrap interval over {resampled}:",
                    _aligned(rows[:CONSOLE_LEVELS + 1])]
    out += ["", "Search compute per arm (the pruned arm also starts from the baseline search):",
            _aligned(compute_rows(compute), left_first=True)]
    if warnings:
        out += ["", "Warnings:"] + [f"- {w}" for w in warnings]
    return "\n".join(out)


def _int(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{int(v)}"


def _pct(v):
    return "" if isinstance(v, float) and math.isnan(v) else f"{100 * v:.2f}%"


def _points(v):
    if isinstance(v, float) and math.isnan(v):
        return ""
    text = f"{100 * v:+.2f}"
    return "+0.00" if text == "-0.00" else text


def _md_table(rows):
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows[1:]]


def configuration_rows(configurations, runs):
    """The chosen configuration of every arm at every size point, as rows of text cells."""
    rows = [["arm", "tuning", "sparsity", "widths", "nonzeros", "learning rate", "configuration", "search"]]
    for r in configurations.itertuples():
        models = arms.rows(runs, r.arm, r.tuning)
        models = models[(models.target_sparsity == r.target_sparsity) & (models.role.fillna("eval") == r.role)]
        nonzeros = f"{models.nonzero_params.mean():,.0f}" if len(models) else ""
        if len(models) and "fill" in models and models.fill.notna().any():
            nonzeros += f" ({models.fill.mean():.0%} of the budget)"
        rows.append([arms.get(r.arm).title, r.tuning, f"{r.target_sparsity:g}", r.widths, nonzeros,
                     f"{r.learning_rate:.3g}", r.chosen, r.search])
    return rows


def markdown(made, size, drawn=True):
    """report.md: the answer, the figure, every contrast's table and sentence, the tolerance frontiers, the
    iso-accuracy comparison, the chosen configurations, the search compute, the rules and the warnings."""
    found = made.results
    study, comparison = found.study, found.comparison
    t, head = study.tuning, arms.headline(study)
    lines = [f"# {study.name}: large-sparse versus small-dense", ""]
    if found.answer:
        lines += [found.answer, ""]
    lines += [f"**{compare.sentence(comparison, head.name, study.min_effect, _available(study))}.**", ""]
    if drawn:
        lines += ["![Test accuracy against nonzero parameters, and the headline's difference](frontier.png)", ""]
    lines += [
        f"Family `{study.family}` (wide widths {'x'.join(map(str, study.widths))}) on `{study.dataset}`, "
        f"{len(study.seeds)} evaluation seed(s), pruned to {', '.join(f'{s:g}' for s in study.sparsities)} sparsity, "
        f"trained with the `{engines_of(found.runs)}` engine. Each arm is tuned by a {t.oracle} search of {t.trials} "
        f"trials on the validation split, with search seed {study.search_seed} (never an evaluation seed): the "
        "baseline's learning rate; per size point the pruned arm's fine-tune learning rate, schedule and spread of "
        "sparsity over layers, and the narrow arm's learning rate and split of width. A narrow model has no more "
        "parameters than the fewest nonzeros of the pruned models at its size point, and trains for as many "
        "optimizer steps as they did in all. Deltas and intervals are in percentage points.",
        "",
    ]
    if found.tolerance is not None and len(found.tolerance):
        lines += ["## Tolerance frontier", "",
                  f"The smallest size of each arm whose accuracy stays within "
                  f"{hypothesis.tolerance_words(study.tolerance)} of the wide dense reference ({_reference(found)}): "
                  "the one-sided 95% upper bound of its drop (seeds' spread and test-set error) is under the "
                  "tolerance, testing the sizes from the "
                  "largest down and stopping at the first that fails. `beyond-smallest`: every size tried is within, "
                  "so the compression is at least the one shown; `not-reached`: not even the largest size tried is.",
                  ""]
        lines += _md_table(tolerance_rows(found.tolerance, size if size in set(found.tolerance.size_axis)
                                          else "nonzero_params")) + [""]
        notes = tolerance_notes(found.tolerance)
        lines += notes + ([""] if notes else [])
        if found.tolerance.ratio.notna().any():
            lines += ["Compression within tolerance on every size axis (baseline size over the frontier's size):", ""]
            lines += _md_table(axes_rows(found.tolerance)) + [""]
    if found.iso is not None and len(found.iso):
        rows = iso_rows(found.iso, head)
        lines += ["## At equal accuracy", ""]
        if len(rows) > 1:
            lines += [f"The nonzeros each arm of `{head.name}` needs to reach each accuracy level (the "
                      "wide dense reference's minus whole multiples of the tolerance), read on the piecewise-linear "
                      "curve of its "
                      "mean accuracy against log nonzeros, never beyond its measured sizes; the ratio's 95% "
                      f"interval is a bootstrap over {found.iso.resampled.iloc[0]}.", ""]
            lines += _md_table(rows) + [""]
        else:
            lines += ["No accuracy level is within both arms' measured range.", ""]
    for contrast in arms.contrasts(study):
        rows = comparison[comparison.contrast == contrast.name]
        if rows.empty:
            continue
        lines += [f"## {contrast.name}", ""]
        if _chooses(contrast):
            lines += [f"The study's question: {headline_words(study, contrast)}. A search that chose worse than "
                      "its recipe on validation is named under Warnings.", ""]
        lines += _md_table(comparison_rows(comparison, contrast)) + [""]
        lines += [compare.sentence(comparison, contrast.name, study.min_effect, _available(study)) + ".", ""]
        notes = [f"- sparsity {r.target_sparsity:g}: {r.note}" for r in rows.itertuples()
                 if isinstance(r.note, str) and r.note]
        lines += notes + ([""] if notes else [])
    if len(set(comparison.contrast)) > 1:
        lines += ["## Verdicts by tuning", "", f"{head.arm.capitalize()} wins / {head.opponent} wins / ties over the "
                  "size points.", ""]
        lines += _md_table(grid(study, comparison)) + [""]
    if made.configurations is not None and len(made.configurations):
        lines += ["## Chosen configurations", "", "What every arm trained at every size point (each configuration at "
                  "every evaluation seed).", ""]
        lines += _md_table(configuration_rows(made.configurations, found.runs)) + [""]
    lines += ["## Search compute per arm", ""] + _md_table(compute_rows(made.compute)) + [""]
    lines += [
        "## How the verdict is made",
        "",
        "Accuracies are means over seeds; `delta` is the arm minus its opponent. The interval counts the seeds' "
        "spread and the finite test set's sampling error (binomial, both arms counted as independent, which is "
        f"conservative), with Bonferroni's correction over the {len(study.sparsities)} size points, and is cut to "
        f"[-1, 1]. A side wins only when the interval excludes zero and |delta| >= min_effect = "
        f"{compare.effect_words(study.min_effect)}. Where the narrow model fills less than 90% of its budget, the "
        "smallest narrow model above the budget is trained too and the verdict brackets the budget (the arm beats "
        "the larger one: it wins; the smaller one beats the arm: it wins; tied with both: a tie; otherwise "
        "`inconclusive-underfilled`). A size point where a model ended at chance accuracy is `diverged`: its "
        "recipe failed, and the difference says nothing about the method; one where a model was evaluated at chance "
        "although it trained is `unreliable`: its evaluation failed, not its weights. docs/results.md gives every "
        "rule.",
    ]
    if size != "nonzero_params":
        lines.append(f"Sizes in the figure and the size columns are `{size}`.")
    if made.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in made.warnings]
    if made.failures:
        lines += ["", f"{len(made.failures)} run(s) failed and are not in the tables."]
    return "\n".join(lines) + "\n"
