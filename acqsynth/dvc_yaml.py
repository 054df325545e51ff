"""dvc.yaml, rendered from the stage declarations (acqsynth.stages.PIPELINE): `acqsynth dvc-yaml` writes it, and a
test checks that the committed file is this rendering. A stage's deps are the project files it runs (from the import
graph, acqsynth.imports) and the paths it reads, so editing any code a stage runs reruns it and what follows.
"""

from __future__ import annotations

from pathlib import Path

from acqsynth import imports
from acqsynth.comparison import report as comparison_report
from acqsynth.stages import PIPELINE, Stage

HEADER = """\
# Rendered from the stage declarations in acqsynth/stages.py by `acqsynth dvc-yaml`; edit those, not this file.
# Each cmd runs the stage as its own Prefect flow run; `acqsynth run` runs the same tasks in one flow run and then
# records the result here with `dvc commit`. Outputs persist so that a failed quality gate leaves the previous good
# version in place (stages write to a staging path and promote only what passed). A stage's deps are the project
# files it runs (its imports, transitively) and the paths it reads.
"""
# The report stage's metrics are the run's headline (in-domain before/after, forgetting, verified and copy rates):
# the one metrics file; every other stage's metrics are outputs.
HEADLINE = PIPELINE[-1]
COMPARED = ("tiny", ("math", "mcq", "code"))  # the profile and targets whose comparison report is committed
WIDTH = 120


def _flow_list(key: str, items: list[str], indent: int) -> list[str]:
    """`key: [a, b, ...]`, wrapped at WIDTH under its opening bracket."""
    lead = " " * indent + f"{key}: ["
    lines, line = [], lead
    for index, item in enumerate(items):
        piece = item + ("]" if index == len(items) - 1 else ",")
        if len(line) + len(piece) + 1 > WIDTH and line != lead:
            lines.append(line.rstrip())
            line = " " * len(lead)
        line += piece + ("" if index == len(items) - 1 else " ")
    return [*lines, line if items else lead + "]"]


def _stage(stage: Stage) -> list[str]:
    lines = [f"  {stage.name}:", f"    cmd: acqsynth stage {stage.name}"]
    lines += _flow_list("deps", [*imports.compact(stage.code), *(str(path) for path in stage.reads)], 4)
    lines += _flow_list("params", list(stage.params), 4)
    lines.append("    outs:")
    for path in stage.writes:
        lines.append(f"      - {path}: {{cache: false, persist: true}}" if path in stage.in_git
                     else f"      - {path}: {{persist: true}}")
    lines += [f"      - {plot.path}: {{cache: false}}" for plot in stage.plots]  # drawn under `plots` below
    if stage is HEADLINE:
        lines += ["    metrics:", f"      - {stage.metrics}: {{cache: false}}"]
    else:  # a plain output in git: `dvc exp show` lists the headline alone, and fits a screen
        lines.append(f"      - {stage.metrics}: {{cache: false}}")
    return lines


def _plots() -> list[str]:
    lines = ["plots:"]
    for stage in PIPELINE:
        for plot in stage.plots:
            lines += [f"  - {plot.title}:", "      template: linear", f"      x: {plot.x}", "      y:",
                      *_flow_list(str(plot.path), list(plot.y), 8), f"      x_label: {plot.x}",
                      f"      y_label: {plot.y_label}"]
    lines += [f"  - {path}" for stage in PIPELINE for path in stage.writes if path.suffix == ".png"]
    lines.append("  # `acqsynth compare` (not a stage: it runs the stages above once per arm and seed, under "
                 "experiments/)")
    profile, domains = COMPARED
    for domain in domains:
        out = comparison_report.report_dir(Path(), profile, domain)
        lines += [f"  - Comparison ({domain}), in-domain accuracy per arm:", "      template: bar_horizontal",
                  "      x: accuracy", "      y:", f"        {out / comparison_report.ARMS_TABLE}: arm",
                  "      x_label: in-domain accuracy", "      y_label: arm"]
        images = (comparison_report.ACCURACY_PLOT, comparison_report.FOREST_PLOT, comparison_report.REWARDS_PLOT,
                  comparison_report.DIAGNOSTICS_PLOT)
        lines += [f"  - {out / name}" for name in images]
    return lines


def render() -> str:
    body = ["stages:"]
    for stage in PIPELINE:
        body += [*_stage(stage), ""]
    return HEADER + "\n".join([*body, *_plots()]) + "\n"
