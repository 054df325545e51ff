"""A comparison's report: reports/compare/<profile>/<domain>/ with report.md (tables of the statistics), the per-run and
per-arm CSVs (DVC plots) and the PNG plots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth import artifacts
from acqsynth.comparison.arms import main_arms, set_args
from acqsynth.comparison.statistics import (paired_difference, primary_comparisons, results_table,
                                            reward_curves, summary_json, summary_table, weakest_difficulty)
from acqsynth.config import PipelineConfig, write_params
from acqsynth.report import save_figure

def _pct_ci(mean: float, half: float) -> str:
    if math.isnan(half):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * half:.1f}"


def primary_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | against | difference, pts | Holm interval, pts | level | Holm p | detectable, pts | seeds x "
             "questions |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        low, high = row["interval"]
        lines.append(f"| {row['arm']} | {row['reference']} | {100 * row['difference']:+.1f} | "
                     f"[{100 * low:+.1f}, {100 * high:+.1f}] | {100 * row['interval_level']:.1f}% | "
                     f"{row['p_holm']:.3f} | {100 * row['minimum_detectable_difference']:.1f} | "
                     f"{row['seeds']} x {row['questions']} |")
    return "\n".join(lines)


def control_lines(table: pd.DataFrame) -> list[str]:
    """What each acquisition arm adds over `verify_only` (the same GRPO with the acquisition term removed)."""
    lines = []
    for arm in sorted(a for a in table["arm"].unique() if a.startswith("acqsyn_")):
        diff, half, pairs = paired_difference(table, arm, "verify_only")
        if not pairs:
            continue
        verdict = ("better than `verify_only`" if diff - half > 0 else
                   "no better than `verify_only`: its acquisition term does nothing measurable here")
        lines.append(f"- `{arm}`: {100 * diff:+.1f} pts (CI95 ± {100 * half:.1f}, {pairs} seeds) against "
                     f"`verify_only`, {verdict}.")
    return lines
AUDIT_COLUMNS = {"verified_rate": "verified rate", "copy_rate": "copy rate",
                 "reference_confirmed_rate": "kept answers the reference solver confirms",
                 "difficulty_matches_seed_rate": "difficulty matches the seed's",
                 "informative_group_rate": "GRPO groups with two differing rewards"}


def audit_markdown(table: pd.DataFrame) -> str:
    """Per arm, means over seeds: what verification kept (the verify stage's audit, synthetic arms only) and the
    difficulty mix of the data the student was fine-tuned on (every arm)."""
    mix = sorted(column for column in table.columns if column.startswith("difficulty_")
                 and column not in AUDIT_COLUMNS)
    header = ["arm", *AUDIT_COLUMNS.values(), *[f"fine-tuning data: {c.removeprefix('difficulty_')}" for c in mix]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, group in table.groupby("arm", sort=False):
        audit = [group[column].dropna().mean() if column in group else float("nan") for column in AUDIT_COLUMNS]
        # A seed whose data has no sample of a difficulty has share 0 there, not a missing value.
        shares = [group[column].fillna(0).mean() if group["n_data"].notna().any() else float("nan")
                  for column in mix]
        lines.append(f"| {arm} | " + " | ".join("—" if math.isnan(value) else f"{100 * value:.1f}%"
                                               for value in [*audit, *shares]) + " |")
    return "\n".join(lines)


def difficulty_markdown(table: pd.DataFrame) -> str:
    """In-domain accuracy per difficulty after fine-tuning, per arm (mean over seeds), under the base student's."""
    kinds = sorted(column.removeprefix("accuracy_") for column in table.columns if column.startswith("accuracy_"))
    if not kinds:
        return ""
    lines = ["| arm | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1),
             "| base student | " + " | ".join(f"{100 * table[f'before_{kind}'].mean():.1f}%" for kind in kinds) + " |"]
    for arm, group in table.groupby("arm", sort=False):
        lines.append(f"| {arm} | " + " | ".join(f"{100 * group[f'accuracy_{kind}'].mean():.1f}%" for kind in kinds)
                     + " |")
    return "\n".join(lines)


def summary_markdown(summary: pd.DataFrame, base_accuracy: float, reference: str = "original") -> str:
    forgetting = [column for column in summary.columns if column.startswith("forgetting_")]
    header = ["arm", "seeds", "in-domain accuracy % (CI95)", f"vs {reference}, pts (CI95)",
              *[f"forgetting {c.removeprefix('forgetting_')}, pts" for c in forgetting], "verified rate", "n",
              "diversity"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.itertuples():
        diff = "—" if math.isnan(row.diff_vs_original) else _pct_ci(row.diff_vs_original, row.diff_ci95)
        cells = [row.arm, str(row.seeds), _pct_ci(row.accuracy, row.accuracy_ci95), diff,
                 *[f"{100 * getattr(row, c):.1f}" for c in forgetting],
                 "—" if math.isnan(row.verified_rate) else f"{100 * row.verified_rate:.0f}%",
                 "—" if math.isnan(row.n_data) else f"{row.n_data:.0f}",
                 "—" if math.isnan(row.embedding_diversity) else f"{row.embedding_diversity:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Base student before fine-tuning: {100 * base_accuracy:.1f}% in domain.")
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# The kinds of arm, in the order the forest plot groups them.
ARM_KINDS = (("real data", ("seed_only", "random_pool", "filtered_pool")),
             ("untrained generator", ("original", "rejection_sampling")),
             ("GRPO controls", ("format_only", "verify_only")),
             ("AcquisitionSynthesis", None))  # None: every acqsyn_* arm


def _arm_kind(arm: str) -> str:
    return next(kind for kind, arms in ARM_KINDS if (arms is None and arm.startswith("acqsyn_"))
                or (arms is not None and arm in arms))


def _plot_grpo_diagnostics(curves: pd.DataFrame, weakest: str | None, pool_share: float | None, path: Path) -> None:
    """Over GRPO steps, per arm: the verified rate, the acquisition percentile against the fixed reference set, and
    the share of the student's weakest difficulty among the verified rollouts (dashed: the real pool's)."""
    plt = _pyplot()

    panels = [("verified_rate", "verified rate"), ("acquisition_percentile", "acquisition percentile vs reference")]
    if weakest is not None and f"difficulty: {weakest}" in curves:
        panels.append((f"difficulty: {weakest}", f"share of '{weakest}' among verified"))
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    for axis, (column, label) in zip(np.atleast_1d(axes), panels, strict=True):
        for arm, group in curves.groupby("arm"):
            if column in group and group[column].notna().any():
                # a 5-step rolling mean: one step's 32 rollouts are noisy
                axis.plot(group["step"], group[column].rolling(5, min_periods=1).mean(), label=arm)
        if column.startswith("difficulty: ") and pool_share is not None:
            axis.axhline(pool_share, color="grey", linestyle="--", label="real pool")
        axis.set_xlabel("GRPO step")
        axis.set_ylabel(label)
        axis.set_ylim(0, 1)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    save_figure(figure, path)


def _plot_accuracy(summary: pd.DataFrame, base_accuracy: float, questions: float, path: Path) -> None:
    """Each arm's mean accuracy with its CI95 over seeds, sorted, on an axis fitted to the intervals (a bar from 0
    would hide differences of a few points), beside the base student."""
    plt = _pyplot()

    ordered = summary.sort_values("accuracy")
    means = 100 * ordered["accuracy"].to_numpy()
    errors = np.nan_to_num(100 * ordered["accuracy_ci95"].to_numpy())
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(ordered) + 1.6))
    axis.errorbar(means, range(len(ordered)), xerr=errors, fmt="o", capsize=3, color="tab:blue")
    axis.axvline(100 * base_accuracy, color="grey", linestyle="--", label=f"base student ({100 * base_accuracy:.1f}%)")
    axis.set_yticks(range(len(ordered)), ordered["arm"])
    low = min(float(np.min(means - errors)), 100 * base_accuracy)
    high = max(float(np.max(means + errors)), 100 * base_accuracy)
    margin = max(1.0, 0.08 * (high - low))
    axis.set_xlim(max(0.0, low - margin), min(100.0, high + margin))
    axis.set_xlabel("in-domain accuracy %")
    seeds = int(ordered["seeds"].max()) if len(ordered) else 0
    axis.set_title(f"In-domain accuracy per arm: mean and 95% t-interval over {seeds} seeds, {questions:.0f} questions",
                   fontsize=9)
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(axis="x", alpha=0.3)
    save_figure(figure, path)


def _plot_forest(summary: pd.DataFrame, reference: str, path: Path) -> None:
    """Each arm's paired difference in accuracy from `reference` (mean and 95% t-interval over seeds, points),
    grouped by kind of arm: what the comparison is about, on an axis of differences rather than of accuracies."""
    plt = _pyplot()
    rows = summary[summary["arm"] != reference].assign(kind=lambda f: f["arm"].map(_arm_kind))
    order = {kind: index for index, (kind, _) in enumerate(ARM_KINDS)}
    rows = rows.sort_values(["kind", "diff_vs_original"], key=lambda c: c.map(order) if c.name == "kind" else c)
    figure, axis = plt.subplots(figsize=(8, 0.42 * len(rows) + 1.8))
    colours = dict(zip(order, ("tab:grey", "tab:orange", "tab:purple", "tab:blue")))
    for position, row in enumerate(rows.itertuples()):
        half = 0.0 if np.isnan(row.diff_ci95) else 100 * row.diff_ci95
        axis.errorbar(100 * row.diff_vs_original, position, xerr=half, fmt="o", capsize=3, color=colours[row.kind],
                      label=row.kind if row.kind not in axis.get_legend_handles_labels()[1] else None)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(rows)), rows["arm"])
    axis.invert_yaxis()
    axis.set_xlabel(f"in-domain accuracy minus {reference}'s at the same seed, pts")
    seeds = int(rows["seeds"].max()) if len(rows) else 0
    axis.set_title(f"Difference from {reference}: mean and 95% t-interval over {seeds} seeds, paired by seed",
                   fontsize=9)
    axis.legend(fontsize=7, loc="best")
    axis.grid(axis="x", alpha=0.3)
    save_figure(figure, path)


def _plot_rewards(curves: pd.DataFrame, path: Path) -> None:
    """GRPO's mean reward per step, one panel per arm: the arms' rewards are on different scales (0/1 for
    verify_only, ranks plus a format term for the acquisition arms), so one axis would compare nothing."""
    plt = _pyplot()
    names = sorted(curves["arm"].unique())
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), sharex=True, squeeze=False)
    for axis, name in zip(axes.flat, names):
        group = curves[curves["arm"] == name]
        axis.plot(group["step"], group["mean_reward"].rolling(5, min_periods=1).mean())
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("GRPO step")
        axis.set_ylabel("mean reward (5-step mean)")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names):]:
        axis.set_visible(False)
    figure.suptitle("GRPO mean reward per step, each arm on its own scale (means over seeds)", fontsize=10)
    save_figure(figure, path)


def _plot_size_curve(curve: pd.DataFrame, references: dict[str, float], path: Path) -> None:
    """In-domain accuracy (%) against the synthetic set size, beside the base student and the baselines."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.errorbar(curve["size"], 100 * curve["mean"], yerr=np.nan_to_num(100 * curve["std"]), marker="o",
                  capsize=3, label="random subsets of one acqsyn_combined set (± sd over seeds)")
    for (name, accuracy), style in zip(references.items(), ("--", ":", "-.", (0, (1, 3)))):
        label = name if name == "base student" else f"{name} at the budget"
        axis.axhline(100 * accuracy, color="grey", linestyle=style, label=f"{label} ({100 * accuracy:.1f}%)")
    axis.set_xscale("log")
    axis.set_xticks(list(curve["size"]), [str(size) for size in curve["size"]])
    axis.minorticks_off()
    axis.set_xlabel("synthetic set size (samples)")
    axis.set_ylabel("in-domain accuracy %")
    axis.set_title("Accuracy against synthetic set size", fontsize=10)
    axis.legend(fontsize=7, loc="lower right")
    axis.grid(alpha=0.3)
    save_figure(figure, path)


# The files of a comparison's report that dvc.yaml shows as plots (acqsynth.dvc_yaml), under report_dir.
ARMS_TABLE = "arms.csv"
ACCURACY_PLOT, FOREST_PLOT = "accuracy.png", "difference_from_original.png"
REWARDS_PLOT, DIAGNOSTICS_PLOT, SIZE_PLOT = "rewards.png", "grpo_diagnostics.png", "size_curve.png"


def report_dir(root: Path, profile: str, domain: str) -> Path:
    """Per profile, so that a smoke comparison never overwrites the committed tiny one."""
    return root / "reports" / "compare" / profile / domain


def write_report(root: Path, config: PipelineConfig, results: list[dict[str, Any]], command: str,
                 seconds: float, design: str) -> str:
    """reports/compare/<profile>/<domain>/: report.md, per-run and per-arm CSVs (DVC plots) and PNG plots."""
    out = report_dir(root, config.profile, config.domain)
    table = results_table(results, config.domain)
    if table.empty:
        raise artifacts.ArtifactError(
            f"{root / 'experiments' / config.domain}: no run of the plan has finished, or every finished one is "
            "stale or damaged (see the warnings above): nothing to report")
    base_accuracy = float(table["before"].iloc[0]) if len(table) else float("nan")
    main = table[table["group"] == "arms"]
    summary = summary_table(main)
    write_params(out / "params.yaml", config.model_dump(mode="json"))
    artifacts.atomic_write_text(out / "runs.csv", table.to_csv(index=False))
    artifacts.atomic_write_text(out / ARMS_TABLE, summary.to_csv(index=False))
    primary = primary_comparisons(root, config, main)
    artifacts.atomic_write_text(out / "summary.json",
                                json.dumps({**summary_json(main), "primary_comparisons": primary}, indent=2) + "\n")
    _plot_accuracy(summary, base_accuracy, _eval_n(results), out / ACCURACY_PLOT)
    if "original" in set(summary["arm"]) and len(summary) > 1:
        _plot_forest(summary, "original", out / FOREST_PLOT)
    grpo_arms = [arm.name for arm in main_arms(config) if "policy_update" in arm.stages and arm.name != "original"
                 and arm.name != "rejection_sampling"]
    curves = reward_curves(root, config, grpo_arms, config.compare.seeds)
    artifacts.atomic_write_text(out / "reward_curves.csv", curves.to_csv(index=False))
    from acqsynth.policy import REFERENCE_SIZE

    weakest = weakest_difficulty(main)
    pool = main[main["arm"] == "random_pool"]
    pool_share = (float(pool[f"difficulty_{weakest}"].mean())
                  if weakest is not None and len(pool) and f"difficulty_{weakest}" in pool else None)
    if len(curves):
        _plot_rewards(curves, out / REWARDS_PLOT)
        _plot_grpo_diagnostics(curves, weakest, pool_share, out / DIAGNOSTICS_PLOT)
    sections = [
        f"# Comparison of arms: profile `{config.profile}`, target domain `{config.domain}`",
        "",
        f"Command: `{command}`; parameters: [params.yaml](params.yaml), with each arm's overrides laid over them "
        "(under *Arms*).  ",
        f"Wall time: {seconds / 60:.1f} min on {len(os.sched_getaffinity(0))} cores, {config.compare.workers} runs at "
        f"a time. Budget: {config.compare.budget} samples per arm; "
        f"{config.compare.seeds} seeds per arm; accuracy on {int(_eval_n(results))} held-out {config.domain} "
        f"questions of the `{config.evaluate.split}` split; intervals are 95% t-intervals over seeds (the difference "
        "from `original` is paired by seed).",
        "",
        summary_markdown(summary, base_accuracy),
        "",
        f"![accuracy per arm]({ACCURACY_PLOT})",
        "",
        f"![difference from original per arm]({FOREST_PLOT})",
        "",
        "## What each arm's data is",
        "",
        "Verification's audit of the kept samples (means over seeds; copies are counted over parsed samples) and the "
        "difficulty mix of the samples the student was fine-tuned on.",
        "",
        audit_markdown(main),
        "",
    ]
    if by_difficulty := difficulty_markdown(main):
        sections += ["## In-domain accuracy by difficulty", "",
                     "After fine-tuning, mean over seeds; the first row is the base student.", "", by_difficulty, ""]
    if primary:
        sections += ["## Primary comparisons: paired bootstrap over seeds and questions, Holm-corrected", "",
                     "Each interval is drawn at its Holm level (95% family-wise); *detectable* is the smallest true "
                     "difference the comparison would find with 80% power at that level.", "",
                     primary_markdown(primary), ""]
    controls = control_lines(main)
    if controls:
        sections += ["## Does the acquisition term do anything?", "",
                     "Each acquisition arm against `verify_only`, paired by seed:", "", *controls, ""]
    transfer = table[table["group"] == "transfer"]
    if len(transfer):
        transfer_summary = summary_table(transfer, reference="b_own")
        sections += ["## Cross-model transfer (student B of another shape)", "",
                     "`b_on_a_data`: B fine-tuned on the data made with student A as the reward model; `b_own`: B's "
                     "own arm (GRPO with B as the reward model). The difference column is against `b_own`.", "",
                     summary_markdown(transfer_summary, float(transfer["before"].iloc[0]), "b_own"), ""]
    sizes = table[table["group"] == "sizes"]
    if len(sizes):
        sizes = sizes.assign(size=sizes["arm"].str.removeprefix("size_").astype(int))
        curve = sizes.groupby("size", as_index=False)["accuracy"].agg(["mean", "std", "count"])
        artifacts.atomic_write_text(out / "size_curve.csv", curve.to_csv(index=False))
        baselines = [arm for arm in ("original", "random_pool") if arm in set(main["arm"])]
        references = {"base student": base_accuracy,
                      **{arm: float(main[main["arm"] == arm]["accuracy"].mean()) for arm in baselines}}
        _plot_size_curve(curve, references, out / SIZE_PLOT)
        sections += ["## Low to high resource: accuracy against synthetic set size", "",
                     "| size | accuracy % | seeds |", "|---|---|---|",
                     *[f"| {row.size} | {100 * row.mean:.1f} | {row.count} |" for row in curve.itertuples()],
                     "", f"![size curve]({SIZE_PLOT})", ""]
    if len(curves):
        sections += ["## GRPO reward curves", "", f"![GRPO mean reward per step]({REWARDS_PLOT})", "",
                     "Over GRPO steps (means over seeds, 5-step rolling): the verified rate; the acquisition "
                     f"percentile of the scored rollouts among {REFERENCE_SIZE} fixed real pool samples scored by the "
                     "same student (GRPO ranks rewards within each group, so only this shows whether the generator "
                     "comes to write samples of higher absolute acquisition); and the share of the base student's "
                     f"weakest difficulty (`{weakest}`) among the verified rollouts, beside the real pool's.", "",
                     f"![GRPO diagnostics]({DIAGNOSTICS_PLOT})", ""]
    failed = [result for result in results if "failed" in result]
    if failed:
        sections += ["## Failed runs", "", "| arm | seed | error |", "|---|---|---|",
                     *[f"| {r['arm']} | {r['seed']} | {r['failed'][:300]} |" for r in failed], ""]
    sections += ["## Arms", "", "Each arm at seed N in the main workspace: `dvc exp run -S seed=N` plus its overrides.",
                 "", "| arm | what it is | overrides |", "|---|---|---|",
                 *[f"| {arm.name} | {arm.description} | `{' '.join(set_args(arm.overrides))}` |"
                   for arm in main_arms(config)], "",
                 "## Design of the comparison", "", design, ""]
    markdown = "\n".join(sections)
    artifacts.atomic_write_text(out / "report.md", markdown)
    return markdown


def _eval_n(results: list[dict[str, Any]]) -> float:
    for result in results:
        if "evaluate" in result["metrics"]:
            return result["metrics"]["evaluate"]["in_domain"]["n"]
    return float("nan")
DESIGN = """\
The `tiny` profile is built so that the method can show an effect if it has one, and the evaluation is fixed before
any arm runs:

- **Headroom.** The base student is pre-trained on all three domains for a fixed number of steps, short of
  mastering them; its accuracy on each domain's held-out split is measured before any fine-tuning and shown above.
- **Reachable samples.** The generator starts from the student's weights and is pre-trained to write samples of
  every skill of the domain, so samples of the kinds the student gets wrong are within its reach from the start.
- **Measurable budget.** Every arm fine-tunes the same base student on the same number of samples (seed-only: the
  seed set), with the same fine-tuning settings, and is scored on the same held-out split with a verifiable check;
  differences are reported with 95% intervals over seeds, paired by seed against `original`. One run's accuracy
  on n held-out questions has a binomial standard error of sqrt(p(1-p)/n) (3.4 points at p = 0.65, n = 200), so
  with a few seeds only differences of several points can be told apart from noise.
- **No tuning to the outcome.** Arms, seeds, budget and evaluation split are fixed in `params.yaml` (`compare`);
  the report shows every arm, whatever its result.
"""
