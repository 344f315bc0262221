"""Analysis of finished runs, without any framework: statistics, comparisons, warnings, tables, reports and figures.

- :mod:`.stats`: intervals, verdicts, Pareto fronts (pure);
- :mod:`.compare`: :func:`~.compare.compare`, the frontier, the verdict in words;
- :mod:`.diagnostics`: warnings about the pruned arm's schedules;
- :mod:`.tables`: a study folder's tables from its records, :func:`~.tables.load_results`;
- :mod:`.report` and :mod:`.plots`: report.md, the console summary and the figures.
"""
