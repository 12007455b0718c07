"""The study's DVC stages, one module per stage; each notebook of ``dvc.yaml`` calls one ``run``.

In pipeline order: :mod:`.params` (validation), :mod:`.data`, :mod:`.models`, :mod:`.compress`,
:mod:`.convert`, :mod:`.quantize`, :mod:`.kl_reference`, :mod:`.evaluate`, :mod:`.judge`,
:mod:`.profile`, :mod:`.bundle`, :mod:`.host`, :mod:`.fleet`, :mod:`.report` (the paper stage is
LaTeX plus :mod:`edgellm.report.paper`'s log check). A stage reads the study through
:func:`.common.context` and writes through :class:`edgellm.paths.Layout`, so it names no path itself.
"""
