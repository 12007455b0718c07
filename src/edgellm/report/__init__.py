"""The report: results tables, DVC metrics and plots, figures, LaTeX tables and the paper's generated inputs.

Everything a reader sees is regenerated from the stage records (:mod:`edgellm.records`)
by :func:`edgellm.report.build.build` (the ``report`` stage). Modules, bottom up:

- :mod:`~edgellm.report.latex`: the one ``tex_escape``, ``latex_table``, number formats and ``Macro``;
- :mod:`~edgellm.report.plotting`: the one matplotlib/seaborn set-up and ``savefig``;
- :mod:`~edgellm.report.results`: the results table (one row per variant), per-item scores, comparisons;
- :mod:`~edgellm.report.analysis`: Pareto front and distillation recovery;
- :mod:`~edgellm.report.figures`, :mod:`~edgellm.report.compression_figures`,
  :mod:`~edgellm.report.significance`, :mod:`~edgellm.report.devices`: the figures (and the fleet's tables);
- :mod:`~edgellm.report.tables`: the variants' LaTeX tables;
- :mod:`~edgellm.report.paper`: ``numbers.tex``, artifacts, versions, and the LaTeX log check
  (``python -m edgellm.report.paper check paper/main.log``);
- :mod:`~edgellm.report.build`: orchestration only.

Where a file comes from: a figure ``figures/<stem>.{png,pdf}`` is drawn by the
function named ``<stem>`` (registry: ``build.FIGURES``), a table
``paper/tables/<stem>.tex`` by ``build.TABLES[<stem>]``; every macro of
``paper/generated/numbers.tex`` carries a comment naming its function and source column.
"""
