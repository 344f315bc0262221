"""Analysis of finished runs, without any framework: statistics, comparisons, warnings, tables, reports and figures.

- :mod:`.stats`: intervals, verdicts, what would resolve more, the bracketing rule, Pareto fronts (pure);
- :mod:`.compare`: :func:`~.compare.compare`, the frontier, the verdict in words;
- :mod:`.hypothesis`: the tolerance frontier, iso-accuracy and the study's answer in words (pure);
- :mod:`.diagnostics`: warnings about diverged models and the pruned arm's schedules;
- :mod:`.tables`: a study folder's tables from its records, :func:`~.tables.load_results`;
- :mod:`.report` and :mod:`.plots`: report.md, the console summary and the figures;
- :mod:`.summary`: several studies side by side, :func:`~.summary.compare_studies`.
"""
