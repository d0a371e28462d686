"""routergen's sections of report.html: rewards per arm, arm choices, validator pass rates."""

from __future__ import annotations

import html
from typing import Any

from datacore import ReportSection, bar_chart_svg, line_chart_svg, table_html

from .feedback import LocalFeedbackState
from .llm import STRUCTURED_COUNTS


def report_sections(
    history: list[dict[str, Any]], arms: list[str], skipped: dict[str, str], stop: str, setup: dict[str, Any] | None = None
) -> list[ReportSection]:
    """Build the report sections from the per-iteration summaries (``setup``: the priced cost
    and request count of the set-up calls, e.g. the NAIVE planner)."""
    setup = setup or {"usd": 0.0, "requests": 0}
    fb = LocalFeedbackState()
    for h in history:
        fb.add(h["arm"], h["iteration"], h["reward"])
    secs = [
        ReportSection(
            "Run",
            table_html(
                [
                    "iterations",
                    "generated",
                    "accepted",
                    "stored",
                    "model requests",
                    "priced cost (USD)",
                    "reward formula",
                    "stopped because",
                ],
                [
                    [
                        len(history),
                        sum(h["generated"] for h in history),
                        sum(h["accepted"] for h in history),
                        sum(h["stored"] for h in history),
                        setup["requests"] + sum(h["requests"] for h in history),
                        round(setup["usd"] + sum(h["cost_usd"] for h in history), 6),
                        history[0]["reward_formula"] if history else "-",
                        stop,
                    ]
                ],
            ),
        )
    ]
    if history:
        secs.append(
            ReportSection(
                "Reward per arm over iterations",
                line_chart_svg(fb.running_means(arms, len(history)), "running mean reward per arm", "iteration", "reward")
                + line_chart_svg({"reward": [h["reward"] for h in history]}, "reward of each iteration", "iteration", "reward"),
            )
        )
    counts = {a: sum(1 for h in history if h["arm"] == a) for a in arms}
    rows = []
    for a in arms:
        hs = [h for h in history if h["arm"] == a]
        rows.append(
            [
                a,
                len(hs),
                round(fb.mean(a), 4),
                sum(h["generated"] for h in hs),
                sum(h["accepted"] for h in hs),
                round(sum(h["cost_usd"] for h in hs), 6),
            ]
        )
    secs.append(
        ReportSection(
            "Arm choices",
            bar_chart_svg(counts, "iterations per arm", "arm", "iterations")
            + table_html(["arm", "iterations", "mean reward", "generated", "accepted", "cost (USD)"], rows),
        )
    )
    names: list[str] = []
    for h in history:
        for v in h["validator_evaluated"]:
            if v not in names:
                names.append(v)
    vrows, rates = [], {}
    for v in names:
        ev = sum(h["validator_evaluated"].get(v, 0) for h in history)
        ps = sum(h["validator_passed"].get(v, 0) for h in history)
        rate = ps / ev if ev else 0.0
        rates[v] = rate
        vrows.append([v, ev, ps, round(rate, 4)])
    for v, why in skipped.items():
        vrows.append([v, 0, 0, f"skipped: {why}"])
    errors: dict[str, int] = {}
    for h in history:
        for e, k in h["errors"].items():
            errors[e] = errors.get(e, 0) + k
    body = (bar_chart_svg(rates, "pass rate per validator", "validator", "pass rate") if rates else "") + table_html(
        ["validator", "evaluated", "passed", "pass rate"], vrows
    )
    if errors:
        body += "<p>Failed generations: " + html.escape(", ".join(f"{k}: {v}" for k, v in sorted(errors.items()))) + "</p>"
    secs.append(ReportSection("Validator pass rates", body))
    secs.append(
        ReportSection(
            "Iterations",
            table_html(
                [
                    "iteration",
                    "arm",
                    "p(arm)",
                    "exploration rate",
                    "generated",
                    "accepted",
                    "pass rate",
                    "judge",
                    "mean batch score",
                    "cost (USD)",
                    "reward",
                ],
                [
                    [
                        h["iteration"],
                        h["arm"],
                        h["propensity"],
                        "-" if h["exploration_rate"] is None else round(h["exploration_rate"], 4),
                        h["generated"],
                        h["accepted"],
                        h["pass_rate"],
                        "-" if h["judge"] is None else h["judge"],
                        h["quality"],
                        h["cost_usd"],
                        h["reward"],
                    ]
                    for h in history
                ],
            ),
        )
    )
    tot = {k: sum((h.get("structured") or {}).get(k, 0) for h in history) for k in STRUCTURED_COUNTS}
    if tot["requests"]:
        per_arm = [
            [a] + [sum((h.get("structured") or {}).get(k, 0) for h in history if h["arm"] == a) for k in STRUCTURED_COUNTS]
            for a in arms
        ]
        secs.append(
            ReportSection(
                "Structured outputs (forced tool use, one repair round)",
                table_html(["arm", *STRUCTURED_COUNTS], [r for r in per_arm if r[1]] + [["all", *tot.values()]]),
            )
        )
    return secs
