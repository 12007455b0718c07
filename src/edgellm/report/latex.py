"""The one LaTeX writer of the report: escaping, number formats and the table layout.

Text is plain unless it is marked :class:`Tex`: :func:`cell` escapes plain text
with :func:`tex_escape` and passes ``Tex`` through unchanged, so a cell that
needs LaTeX (``$\\pm$``, ``$\\rightarrow$``, ``$^\\dagger$``) says so and every
other cell (variant names, types, device names) is escaped the same way.
Captions and labels are LaTeX (they are written by hand, with ``\\%`` and
``\\texttt``), and their variable parts are escaped by the caller.
"""

from __future__ import annotations

import math
import textwrap


class Tex(str):
    """A string that is already LaTeX: written as it is."""


def tex_escape(s) -> str:
    """Plain text as LaTeX: braces, backslash, ``_ % & # $ ~``."""
    out = str(s).replace("{", "\x00{").replace("}", "\x00}").replace("\\", r"\textbackslash{}")
    out = out.replace("\x00", "\\")
    for a, b in (("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"), ("$", r"\$"), ("~", r"\textasciitilde{}")):
        out = out.replace(a, b)
    return out


def cell(x) -> str:
    """A table cell or header: :class:`Tex` as it is, anything else escaped."""
    return str(x) if isinstance(x, Tex) else tex_escape(x)


def fmt(x, nd: int = 3) -> str:
    """A number with ``nd`` decimals; ``--`` for a missing one."""
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def fmt_grouped(x, nd: int) -> str:
    """A number for running text: ``nd`` decimals, thousands grouped with ``{,}`` (math-mode safe)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "--"
    return f"{x:,.{nd}f}".replace(",", "{,}")


def header_lines(name: str, width: int = 16) -> Tex:
    """A column header of short lines, so that long names do not widen the table."""
    lines = textwrap.wrap(name, width)
    if len(lines) < 2:
        return Tex(tex_escape(name))
    return Tex("\\shortstack[r]{" + "\\\\".join(tex_escape(x) for x in lines) + "}")


def latex_table(header: list, rows: list[list], caption: str, label: str, align: str, wide: bool = False) -> str:
    """A booktabs table, scaled down only when it is wider than the text; ``wide``: spans both columns."""
    env = "table*" if wide else "table"
    # the tabular goes into a box first and is scaled down only when it is wider than the text (graphicx)
    lines = [rf"\begin{{{env}}}[t]", r"\centering", r"\small", rf"\caption{{{caption}}}", rf"\label{{{label}}}",
             rf"\sbox0{{\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(cell(h) for h in header) + r" \\",
             r"\midrule"]
    lines += [" & ".join(cell(c) for c in r) + r" \\" for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}}",
              r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi", rf"\end{{{env}}}", ""]
    return "\n".join(lines)


class Macro(str):
    """A number macro's value with where it came from: the function that computed it and its source.

    ``origin`` is ``module.qualname``; ``source`` names the results file and column (or the parameter).
    """

    origin: str
    source: str

    def __new__(cls, value, origin: str = "", source: str = ""):
        self = super().__new__(cls, str(value))
        self.origin, self.source = origin, source
        return self

    @property
    def trace(self) -> str:
        return f"{self.origin} <- {self.source}" if self.source else self.origin
