"""report.html sections: domains, intents, tools used, graph sizes, validation pass rate, violation types."""

from __future__ import annotations

from typing import Any

from datacore import ReportSection, Telemetry, bar_chart_svg, table_html

__all__ = ["sections"]


def sections(tel: Telemetry, tools_available: int) -> list[ReportSection]:
    """The gatling-sid sections of a dataset report."""
    h, c = tel.histograms, tel.counters
    out = []
    validated = c.get("validated", 0)
    passed = c.get("gold_passed", 0)
    rows: list[list[Any]] = [
        ["gold traces written", int(c.get("gold", 0))],
        ["hard negatives written", int(c.get("negatives", 0))],
        ["gold candidates validated", int(validated)],
        ["gold pass rate", f"{passed / validated:.4%}" if validated else "n/a"],
        ["gold candidates rejected (not written)", int(c.get("gold_rejected", 0))],
        ["negatives flagged with exactly their rule", int(c.get("negative_flagged_exactly", 0))],
        ["negatives flagged with their rule and others", int(c.get("negative_flagged_with_others", 0))],
        ["negatives the validator misses (written anyway)", int(c.get("negative_missed", 0))],
        ["domains covered", len(h.get("domain", {}))],
        ["distinct tools used", f"{len(h.get('tool', {}))} of {tools_available}"],
    ]
    out.append(ReportSection("Validation summary", table_html(["figure", "value"], rows)))
    for name, title, xl in (
        ("domain", "Traces per domain", "domain"),
        ("intent", "Traces per intent category", "intent"),
        ("graph_size", "Tool calls per trace", "calls"),
        ("oracle", "Traces per oracle", "oracle"),
        ("violation", "Hard negatives per violated rule", "rule"),
        ("gold_violation", "Violations of rejected gold candidates", "rule"),
    ):
        hist = h.get(name)
        if hist:
            if name == "graph_size":
                hist = dict(sorted(hist.items(), key=lambda kv: int(kv[0])))
            out.append(ReportSection(title, bar_chart_svg(hist, title, xl)))
    tools = h.get("tool", {})
    if tools:
        top = sorted(tools.items(), key=lambda kv: (-kv[1], kv[0]))[:25]
        out.append(ReportSection("Most used tools (top 25)", table_html(["tool", "calls"], top)))
    return out
