"""Policy update: GRPO on the generator with TRL's GRPOTrainer. The reward of a rollout is the acquisition reward
on the student, gated by verification as `policy_update.reward.mode` says (RewardConfig), plus a small graded
format term. Every rollout batch is logged with its rewards."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth import artifacts, progress
from acqsynth.acquisition.combine import combine, combined_bounds
from acqsynth.acquisition.scoring import AcquisitionScorer, reward_ranges
from acqsynth.config import AcquisitionScoreConfig, PolicyUpdateConfig, RewardConfig
from acqsynth.models.loading import LoadedModel, best_device, save_checkpoint
from acqsynth.trainer_curves import add_curve_logger
from acqsynth.resume import last_checkpoint
from acqsynth.domains import domain_module
from acqsynth.domains import parse_generated
from acqsynth.verify.samples import VerifyRules, check_samples


@dataclass(frozen=True)
class RolloutReward:
    parsed: bool
    verified: bool
    reason: str
    format_reward: float
    acquisition_reward: float  # 0 where not scored (gate mode: an unverified rollout)
    reward: float | None  # None: no part in its group's advantage (gate mode, unverified)
    difficulty: str | None  # the domain's difficulty of a parsed sample (math: its steps)
    acquisition_percentile: float | None  # where its raw acquisition lies among the reference set's; None: unscored


ROLLOUT_COLUMNS = ["step", "prompt_id", "completion", *RolloutReward.__dataclass_fields__]
CURVE_COLUMNS = ["step", "mean_reward", "parse_rate", "verified_rate", "mean_verified_acquisition",
                 "informative_group_rate", "acquisition_percentile"]
REFERENCE_SIZE = 64  # real pool samples a rollout's acquisition percentile is read against


def reference_scores(scorer: AcquisitionScorer, reward: RewardConfig, reference: pd.DataFrame) -> dict[str, np.ndarray]:
    """Raw acquisition rewards of a fixed set of real samples (columns question, reasoning, answer), scored once.
    GRPO normalises rewards within each group, which hides whether the generator comes to write samples that score
    higher in absolute terms; the student does not change during GRPO, so a rollout's percentile among these
    scores shows it. Empty with no acquisition weight or no reference."""
    names = [name for name, weight in reward.weights.items() if weight]
    if not names or reference.empty:
        return {}
    return scorer.scores(list(reference["question"]), list(reference["reasoning"]), list(reference["answer"]),
                         names, admit=False)


def acquisition_percentiles(raw: dict[str, np.ndarray], reference: dict[str, np.ndarray],
                            weights: dict[str, float]) -> np.ndarray:
    """Each sample's mid-rank percentile in [0, 1] among the reference's scores, per reward, averaged with the
    rewards' absolute weights; a negative weight counts a low score as high."""
    n = len(next(iter(raw.values())))
    total, percentile = 0.0, np.zeros(n)
    for name, scores in reference.items():
        ordered = np.sort(scores)
        rank = (np.searchsorted(ordered, raw[name], "left") + np.searchsorted(ordered, raw[name], "right")) / (
            2 * len(ordered))
        weight = weights[name]
        percentile += abs(weight) * (rank if weight > 0 else 1 - rank)
        total += abs(weight)
    return percentile / total


def reward_bounds(reward: RewardConfig, scoring: AcquisitionScoreConfig) -> tuple[float | None, float | None]:
    """The range every `acquisition_reward` lies in (None: unbounded), failed verification included."""
    low, high = combined_bounds(reward.weights, reward.normalisation, reward_ranges(scoring))
    high = None if high is None else high + reward.verified_bonus
    unscored = 0.0 if reward.mode == "gate" else reward.failed_verification
    return (None if low is None else min(low, unscored)), (None if high is None else max(high, unscored))


def rollout_rewards(completions: list[str], scorer: AcquisitionScorer, reward: RewardConfig,
                    rules: VerifyRules | None = None, group_size: int | None = None,
                    reference: dict[str, np.ndarray] | None = None) -> list[RolloutReward]:
    """Reward of each completion of one generation batch, whose consecutive runs of `group_size` are GRPO's groups
    (the rollouts of one prompt; None: one group). Only the rollouts the mode scores (verified ones; parsed ones in
    paper mode) are scored on the student, the costly part, and normalised: over their group in gate mode, over the
    batch otherwise. With no acquisition weight (the format-only and verified-only baselines) a scored rollout's
    acquisition reward is 0."""
    checks = check_samples(completions, scorer.domain, rules)
    scored = [i for i, check in enumerate(checks) if (check.parsed if reward.mode == "paper" else check.verified)]
    names = [name for name, weight in reward.weights.items() if weight]
    acquisition = np.zeros(len(checks))
    percentile: dict[int, float] = {}
    if names and scored:
        raw = scorer.scores([checks[i].question for i in scored], [checks[i].reasoning for i in scored],
                            [checks[i].answer for i in scored], names)
        size = group_size if reward.mode == "gate" and group_size else len(checks)
        groups: dict[int, list[int]] = {}
        for position, index in enumerate(scored):
            groups.setdefault(index // size, []).append(position)
        for positions in groups.values():
            combined = combine({name: raw[name][positions] for name in names}, reward.weights, reward.normalisation)
            acquisition[[scored[position] for position in positions]] = combined
        if reference:
            percentile = dict(zip(scored, acquisition_percentiles(raw, reference, reward.weights).tolist()))
    difficulty = domain_module(scorer.domain).difficulty
    rewards = []
    is_scored = set(scored)
    for index, check in enumerate(checks):
        format_term = reward.format_weight * check.format_score
        if index in is_scored:
            value = float(acquisition[index])
            total: float | None = value + format_term + (reward.verified_bonus if check.verified else 0.0)
        elif reward.mode == "gate":
            value, total = 0.0, (format_term if reward.verified_bonus else None)
        else:
            value = reward.failed_verification
            total = value + format_term
        rewards.append(RolloutReward(parsed=check.parsed, verified=check.verified, reason=check.reason,
                                     format_reward=check.format_score, acquisition_reward=value, reward=total,
                                     difficulty=difficulty(check.question, check.reasoning) if check.parsed else None,
                                     acquisition_percentile=percentile.get(index)))
    return rewards


class AcquisitionReward:
    """The reward function handed to GRPOTrainer; it keeps every rollout it scored.

    TRL calls it with the whole generation batch of this process. Under several processes each process would see
    only its own slice, and batch-level rewards (normalisation, diversity) would then depend on the process
    layout: this class refuses to run distributed rather than give different rewards for the same samples."""

    __name__ = "acquisition_reward"

    def __init__(self, scorer: AcquisitionScorer, reward: RewardConfig, log_path: Path,
                 rules: VerifyRules | None = None, group_size: int | None = None,
                 reference: dict[str, np.ndarray] | None = None) -> None:
        self.scorer = scorer
        self.reference = reference
        self.reward = reward
        self.rules = rules
        self.group_size = group_size
        self.log_path = log_path  # every scored rollout, appended as it is scored (survives a crash)
        self.rollouts: list[dict[str, Any]] = []

    def restore(self, resumed_step: int) -> None:
        """Take back the rollouts of the steps before `resumed_step` (the checkpoint the trainer resumes from) and
        the diversity archive they built; later ones are redone."""
        kept = []
        if self.log_path.is_file():
            for line in self.log_path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # the line a kill cut short
                    continue
                if row["step"] < resumed_step:
                    kept.append(row)
        artifacts.atomic_write_text(self.log_path, "".join(json.dumps(row) + "\n" for row in kept))
        self.rollouts = kept
        if self.scorer.archive is not None:
            for step in sorted({row["step"] for row in kept}):
                questions = [parse_generated(self.scorer.domain, row["completion"]).question for row in kept
                             if row["step"] == step and row["verified"]]
                if questions:
                    self.scorer.archive.admit(self.scorer.embed(questions))

    def __call__(self, prompts: list[str], completions: list[str], prompt_id: list[str], trainer_state: Any,
                 **_: Any) -> list[float | None]:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise RuntimeError("policy_update: the acquisition reward needs the whole rollout batch; "
                               "run GRPO in one process")
        rewards = rollout_rewards(completions, self.scorer, self.reward, self.rules, self.group_size, self.reference)
        rows = [{"step": int(trainer_state.global_step), "prompt_id": pid, "completion": completion, **asdict(reward)}
                for pid, completion, reward in zip(prompt_id, completions, rewards, strict=True)]
        self.rollouts.extend(rows)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write("".join(json.dumps(row) + "\n" for row in rows))
        return [reward.reward for reward in rewards]


class _ExpectedNoneRewards(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "All reward functions returned None" not in record.getMessage()


_EXPECTED_NONE_REWARDS = _ExpectedNoneRewards()


@contextmanager
def _sampling_with_calculator(generator: LoadedModel, calculator: bool) -> Iterator[None]:
    """TRL's GRPOTrainer samples with `model.generate` and a GenerationConfig, which cannot carry a logits
    processor: the model's `generate` gets a fresh calculator (`acqsynth.generation.calculator`) on every call."""
    if not calculator:
        yield
        return
    from transformers import LogitsProcessorList

    from acqsynth.generation.calculator import CalculatorLogitsProcessor

    model, original = generator.model, generator.model.generate

    def generate(*args: Any, **kwargs: Any) -> Any:
        processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
        processors.append(CalculatorLogitsProcessor(generator.tokenizer))
        return original(*args, logits_processor=processors, **kwargs)

    model.generate = generate
    try:
        yield
    finally:
        del model.generate  # the class's method again


def train_generator(
    generator: LoadedModel,
    scorer: AcquisitionScorer,
    prompts: pd.DataFrame,
    config: PolicyUpdateConfig,
    output_dir: Path,
    checkpoints: Path,
    curves: Path,
    seed: int,
    rules: VerifyRules | None = None,
    calculator: bool = False,
    reference: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, int]:
    """Run GRPO, resuming from the newest checkpoint in `checkpoints` if a crashed run left one; save the trained
    generator to `output_dir`, the curves also to `curves` when `config.report_to` says. Returns the rollout log and
    the step it resumed from (0: a fresh start).
    `prompts` has columns `prompt_id` and `prompt`. With `calculator`, rollouts are sampled with it, as generate
    samples, so that GRPO trains the generator generate uses. `reference`: real samples each rollout's acquisition
    percentile is read against (`reference_scores`)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from acqsynth.generation.vllm_backend import grpo_vllm_kwargs

    on_gpu = best_device().startswith("cuda")
    args = GRPOConfig(
        output_dir=str(checkpoints),
        max_steps=config.max_steps,
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        num_generations=config.num_generations,
        learning_rate=config.learning_rate,
        beta=config.beta,
        temperature=config.temperature,
        max_completion_length=config.max_completion_length,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.checkpoint_every,
        save_total_limit=1,
        report_to="none",
        seed=seed,
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        activation_checkpointing=False,  # TRL defaults it on (and deprecates the old name)
        **grpo_vllm_kwargs(config.use_vllm),
    )
    scored_reference = None if reference is None else reference_scores(scorer, config.reward, reference)
    reward = AcquisitionReward(scorer, config.reward, checkpoints / "rollouts.jsonl", rules,
                               config.num_generations, scored_reference)
    # In gate mode an unverified rollout's None reward is the design, not a fault: TRL's warning about it would
    # repeat at every step.
    logging.getLogger("trl.trainer.grpo_trainer").addFilter(_EXPECTED_NONE_REWARDS)  # once: the same filter
    last, resumed_step = last_checkpoint(checkpoints)
    reward.restore(resumed_step)
    generator.model.train()
    trainer = GRPOTrainer(
        model=generator.model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_pandas(prompts[["prompt_id", "prompt"]], preserve_index=False),
        processing_class=generator.tokenizer,
    )
    add_curve_logger(trainer, config.report_to, curves, resume=last is not None)
    with _sampling_with_calculator(generator, calculator), warnings.catch_warnings():
        # Raised inside the libraries at each checkpoint (peft reads transformers' deprecated alias), not by a call
        # of ours: nothing a user could act on.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        progress.train(trainer, "GRPO on the generator", resume_from_checkpoint=last)
    generator.model.eval()
    save_checkpoint(generator.model, generator.tokenizer, output_dir, bf16=args.bf16)
    rollouts = pd.DataFrame(reward.rollouts, columns=ROLLOUT_COLUMNS)
    # all None (no acquisition weight, or a missing reference) would be an object column: NaN in a float one
    rollouts["acquisition_percentile"] = pd.to_numeric(rollouts["acquisition_percentile"]).astype(float)
    return rollouts, resumed_step


def reward_curve(rollouts: pd.DataFrame) -> pd.DataFrame:
    """Per GRPO step: mean reward (of the rollouts that had one), mean acquisition reward of verified samples,
    parse and verification rates, the share of informative groups: a prompt's rollouts with at least two
    rewards that differ (only those give any rollout a nonzero advantage, so only they move the generator), the
    mean acquisition percentile of the scored rollouts, and the share of each difficulty among the verified
    rollouts (a column `difficulty: <label>` per difficulty seen)."""
    grouped = rollouts.groupby("step")
    spread = rollouts.groupby(["step", "prompt_id"])["reward"].agg(["count", "min", "max"])
    informative = ((spread["count"] >= 2) & (spread["max"] > spread["min"])).groupby("step").mean()
    curve = pd.DataFrame({  # the columns of CURVE_COLUMNS
        "mean_reward": grouped["reward"].mean(),
        "parse_rate": grouped["parsed"].mean(),
        "verified_rate": grouped["verified"].mean(),
        "mean_verified_acquisition": rollouts[rollouts["verified"]].groupby("step")["acquisition_reward"].mean(),
        "informative_group_rate": informative,
        # all None (no acquisition weight) is an object column: as numbers, NaN
        "acquisition_percentile": pd.to_numeric(rollouts["acquisition_percentile"]).groupby(rollouts["step"]).mean(),
    })
    verified = rollouts[rollouts["verified"]]
    if len(verified):
        mix = pd.crosstab(verified["step"], verified["difficulty"].fillna("unknown"), normalize="index")
        curve = curve.join(mix.rename(columns=lambda label: f"difficulty: {label}"))
    return curve.reset_index()
