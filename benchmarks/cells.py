"""How a value and a verdict show in a table cell or a printed line."""

from __future__ import annotations

MET = {None: "-", True: "met", False: "not met"}  # target_met: None where a case has no target


def fmt(value) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
