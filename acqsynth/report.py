"""The run's report: a markdown summary of every stage's metrics and a PNG of the GRPO reward curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from acqsynth import artifacts
from acqsynth.config import PipelineConfig


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def plot_reward_curve(curve: pd.DataFrame, path: Path) -> None:
    """GRPO per step: the mean reward above and the verified rate below, each on its own axis and scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (reward_axis, rate_axis) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    reward_axis.plot(curve["step"], curve["mean_reward"], marker="o" if len(curve) < 30 else None)
    reward_axis.set_ylabel("mean reward")
    reward_axis.set_title("GRPO: mean reward and verified rate of the rollouts per step", fontsize=10)
    rate_axis.plot(curve["step"], 100 * curve["verified_rate"], color="tab:green")
    rate_axis.set_ylabel("verified rollouts %")
    rate_axis.set_ylim(0, 100)
    rate_axis.set_xlabel("GRPO step")
    for axis in (reward_axis, rate_axis):
        axis.grid(alpha=0.3)
    save_figure(figure, path)


def save_figure(figure, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically, and close it."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = artifacts.staging_path(path)
    figure.savefig(staged, format="png", dpi=100)
    plt.close(figure)
    artifacts.promote(staged, path)


def audit_markdown(verify: dict[str, Any]) -> list[str]:
    """What the kept data is (metrics/verify.json): copies, the reference solver's agreement, the difficulty mix
    and how often a sample's difficulty matches its seed's, and what the answer model cost."""
    by_split = ", ".join(f"{split} {count}" for split, count in verify["copies_by_split"].items())
    lines = ["## What the kept data is", "", "| quantity | value |", "|---|---|",
             f"| copy rate (copies of seed/pool/pretrain/eval questions, over parsed samples) | "
             f"{_pct(verify['copy_rate'])}{f' ({by_split})' if by_split else ''} |"]
    if "reference_confirmed_rate" in verify:
        lines.append(f"| kept answers the reference solver confirms | {_pct(verify['reference_confirmed_rate'])} |")
    lines.append(f"| difficulty matches the seed's | {_pct(verify['difficulty_matches_seed_rate'])} |")
    lines += [f"| difficulty {kind} | {_pct(share)} |" for kind, share in verify["difficulty_mix"].items()]
    if verify["answer_model"]:
        cost = verify["answer_model"]
        lines.append(f"| answer model `{cost['model']}` | {cost['generations']} generations for {cost['questions']} "
                     f"questions, {cost['seconds']:.1f} s |")
    return [*lines, ""]


def summary_markdown(config: PipelineConfig, metrics: dict[str, dict[str, Any]]) -> str:
    build, policy, evaluation = metrics["build_models"], metrics["policy_update"], metrics["evaluate"]
    domain = config.domain
    in_domain = evaluation["in_domain"]
    lines = [
        f"# acqsynth run: profile `{config.profile}`, target domain `{domain}`",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| base generator parse rate | {_pct(build[f'{domain}_base_generator_parse_rate'])} |",
        f"| base generator verified rate | {_pct(build[f'{domain}_base_generator_verified_rate'])} |",
        (f"| GRPO mean reward, first -> last step | {policy['first_step_mean_reward']:.3f} -> "
         f"{policy['last_step_mean_reward']:.3f} |" if policy["steps"] else "| GRPO | none (untrained generator) |"),
        *([f"| GRPO groups with two differing rewards (the only ones that move the generator) | "
           f"{_pct(policy['informative_group_rate'])} |"] if policy["steps"] else []),
        f"| trained generator parse rate | {_pct(metrics['generate']['parse_rate'])} |",
        f"| verified rate (kept / generated) | {_pct(metrics['verify']['verified_rate'])} "
        f"({metrics['verify']['n_verified']} / {metrics['verify']['n_checked']}) |",
        "",
        "## Student accuracy before and after fine-tuning",
        "",
        "| domain | role | before | after | change | n |",
        "|---|---|---|---|---|---|",
        f"| {domain} | in-domain | {_pct(in_domain['before_accuracy'])} | {_pct(in_domain['after_accuracy'])} | "
        f"{100 * in_domain['gain']:+.1f} pts | {in_domain['n']} |",
        *[f"| {other} | forgetting | {_pct(values['before_accuracy'])} | {_pct(values['after_accuracy'])} | "
          f"{-100 * values['drop']:+.1f} pts | {values['n']} |" for other, values in evaluation["forgetting"].items()],
        "",
        f"In domain by difficulty ({evaluation['split']} split):",
        "",
        "| difficulty | before | after | change | n |",
        "|---|---|---|---|---|",
        *[f"| {kind} | {_pct(values['before_accuracy'])} | {_pct(values['after_accuracy'])} | "
          f"{100 * (values['after_accuracy'] - values['before_accuracy']):+.1f} pts | {values['n']} |"
          for kind, values in in_domain["by_difficulty"].items()],
        "",
        "## Acquisition rewards of the verified samples (mean, on the base student)",
        "",
        "| reward | mean |",
        "|---|---|",
        *[f"| {key.removeprefix('mean_')} | {value:.4g} |" for key, value in metrics["acquisition_score"].items()
          if key.startswith("mean_") and value is not None],
        "",
        f"GRPO reward (`{config.policy_update.reward.mode}`): {dict(config.policy_update.reward.weights)} with "
        f"`{config.policy_update.reward.normalisation}` normalisation within each GRPO group.",
        "",
        *audit_markdown(metrics["verify"]),
        "## Rejected samples by reason",
        "",
        "| reason | count |",
        "|---|---|",
        *[f"| {reason} | {count} |" for reason, count in metrics["verify"]["rejected_by_reason"].items()],
        "",
        "## Stage wall times",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {stage} | {stage_metrics['seconds']:.1f} |" for stage, stage_metrics in metrics.items()],
        "",
        "![GRPO reward per step](policy_rewards.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(config: PipelineConfig, metrics: dict[str, dict[str, Any]], curve: pd.DataFrame,
                 markdown_path: Path, plot_path: Path) -> str:
    plot_reward_curve(curve, plot_path)
    markdown = summary_markdown(config, metrics)
    artifacts.atomic_write_text(markdown_path, markdown)
    return markdown
