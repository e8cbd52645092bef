"""A brms-style summary of a Fit: text for print(), an HTML table for Jupyter."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

_RENAME = {"Q2.5": "l-95% CI", "Q97.5": "u-95% CI"}


@dataclass(frozen=True, eq=False)
class Summary:
    """What ``fit.summary()`` returns; ``str()`` gives the report, Jupyter shows HTML."""

    header: tuple[tuple[str, str], ...]
    group_level: tuple[tuple[str, int, pd.DataFrame], ...]  # (factor, levels, table)
    population_level: pd.DataFrame
    family_level: pd.DataFrame | None
    problems: tuple[str, ...]

    def _sections(self):
        for factor, levels, table in self.group_level:
            yield f"~{factor} (Number of levels: {levels})", table
        yield "Regression Coefficients:", self.population_level
        if self.family_level is not None and len(self.family_level):
            yield "Further Distributional Parameters:", self.family_level

    def __str__(self) -> str:
        width = max(len(key) for key, _ in self.header)
        lines = [f"{key:>{width}}: {value}" for key, value in self.header]
        if self.group_level:
            lines += ["", "Multilevel Hyperparameters:"]
        for title, table in self._sections():
            if not title.startswith("~"):
                lines.append("")
            lines += [title, _format(table)]
        if self.problems:
            lines += ["", "Warnings:"] + [f"- {problem}" for problem in self.problems]
        else:
            lines += ["", "No divergences; every R-hat <= 1.01 and every ESS >= 100 per chain."]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = ["<div class='lmmformula-summary'><table>"]
        parts += [
            f"<tr><th style='text-align:right'>{html.escape(k)}</th><td style='text-align:left'>"
            f"{html.escape(v)}</td></tr>"
            for k, v in self.header
        ]
        parts.append("</table>")
        for title, table in self._sections():
            parts.append(f"<h4>{html.escape(title)}</h4>")
            parts.append(_rounded(table).to_html())
        if self.problems:
            items = "".join(f"<li>{html.escape(p)}</li>" for p in self.problems)
            parts.append(f"<p><b>Warnings</b></p><ul>{items}</ul>")
        parts.append("</div>")
        return "".join(parts)


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    out = table.rename(columns=_RENAME).copy()
    for column in out.columns:
        if column in ("Bulk_ESS", "Tail_ESS"):
            out[column] = out[column].round().astype("Int64")
    return out.round(2)


def _format(table: pd.DataFrame) -> str:
    return _rounded(table).to_string(float_format=lambda v: f"{v:.2f}", na_rep="NA")
