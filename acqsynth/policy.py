"""Policy update: GRPO on the generator with TRL's GRPOTrainer. The reward of a rollout is the acquisition reward
on the student for samples that pass verification, a configured value for those that fail, plus a small graded
format term. Every rollout batch is logged with its rewards."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from acqsynth import artifacts
from acqsynth.acquisition.combine import combine, combined_bounds
from acqsynth.acquisition.scoring import AcquisitionScorer, reward_ranges
from acqsynth.config import AcquisitionScoreConfig, PolicyUpdateConfig, RewardConfig
from acqsynth.models.loading import LoadedModel, best_device
from acqsynth.resume import last_checkpoint
from acqsynth.domains.sample import parse_sample
from acqsynth.verify.samples import VerifyRules, check_samples


@dataclass(frozen=True)
class RolloutReward:
    parsed: bool
    verified: bool
    reason: str
    format_reward: float
    acquisition_reward: float
    reward: float


ROLLOUT_COLUMNS = ["step", "prompt_id", "completion", *RolloutReward.__dataclass_fields__]
CURVE_COLUMNS = ["step", "mean_reward", "parse_rate", "verified_rate", "mean_verified_acquisition"]


def reward_bounds(reward: RewardConfig, scoring: AcquisitionScoreConfig) -> tuple[float | None, float | None]:
    """The range every `acquisition_reward` lies in (None: unbounded), failed verification included."""
    low, high = combined_bounds(reward.weights, reward.normalisation, reward_ranges(scoring))
    fail = reward.failed_verification
    return (None if low is None else min(low, fail)), (None if high is None else max(high, fail))


def rollout_rewards(completions: list[str], scorer: AcquisitionScorer, reward: RewardConfig,
                    rules: VerifyRules | None = None) -> list[RolloutReward]:
    """Reward of each completion of one generation batch. Only verified samples are scored on the student (the
    costly part), and normalisation runs over them. With no acquisition weight (the format-only baseline) a verified
    sample's acquisition reward is 0."""
    checks = check_samples(completions, scorer.domain, rules)
    verified = [check for check in checks if check.verified]
    names = [name for name, weight in reward.weights.items() if weight]
    if names and verified:
        raw = scorer.scores([c.question for c in verified], [c.reasoning for c in verified],
                            [c.answer for c in verified], names)
        acquisition = iter(combine(raw, reward.weights, reward.normalisation))
    else:
        acquisition = iter([0.0] * len(verified))
    rewards = []
    for check in checks:
        value = float(next(acquisition)) if check.verified else reward.failed_verification
        rewards.append(RolloutReward(
            parsed=check.parsed,
            verified=check.verified,
            reason=check.reason,
            format_reward=check.format_score,
            acquisition_reward=value,
            reward=value + reward.format_weight * check.format_score,
        ))
    return rewards


class AcquisitionReward:
    """The reward function handed to GRPOTrainer; it keeps every rollout it scored.

    TRL calls it with the whole generation batch of this process. Under several processes each process would see
    only its own slice, and batch-level rewards (normalisation, diversity) would then depend on the process
    layout: this class refuses to run distributed rather than give different rewards for the same samples."""

    __name__ = "acquisition_reward"

    def __init__(self, scorer: AcquisitionScorer, reward: RewardConfig, log_path: Path,
                 rules: VerifyRules | None = None) -> None:
        self.scorer = scorer
        self.reward = reward
        self.rules = rules
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
                questions = [parse_sample(row["completion"]).question for row in kept
                             if row["step"] == step and row["verified"]]
                if questions:
                    self.scorer.archive.admit(self.scorer.embed(questions))

    def __call__(self, prompts: list[str], completions: list[str], prompt_id: list[str], trainer_state: Any,
                 **_: Any) -> list[float]:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise RuntimeError("policy_update: the acquisition reward needs the whole rollout batch; "
                               "run GRPO in one process")
        rewards = rollout_rewards(completions, self.scorer, self.reward, self.rules)
        rows = [{"step": int(trainer_state.global_step), "prompt_id": pid, "completion": completion, **asdict(reward)}
                for pid, completion, reward in zip(prompt_id, completions, rewards, strict=True)]
        self.rollouts.extend(rows)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write("".join(json.dumps(row) + "\n" for row in rows))
        return [reward.reward for reward in rewards]


def train_generator(
    generator: LoadedModel,
    scorer: AcquisitionScorer,
    prompts: pd.DataFrame,
    config: PolicyUpdateConfig,
    output_dir: Path,
    checkpoints: Path,
    seed: int,
    rules: VerifyRules | None = None,
) -> tuple[pd.DataFrame, int]:
    """Run GRPO, resuming from the newest checkpoint in `checkpoints` if a crashed run left one; save the trained
    generator to `output_dir`. Returns the rollout log and the step it resumed from (0: a fresh start).
    `prompts` has columns `prompt_id` and `prompt`."""
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
        gradient_checkpointing=False,
        disable_tqdm=False,
        **grpo_vllm_kwargs(config.use_vllm),
    )
    reward = AcquisitionReward(scorer, config.reward, checkpoints / "rollouts.jsonl", rules)
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
    trainer.train(resume_from_checkpoint=last)
    generator.model.eval()
    generator.model.save_pretrained(output_dir)
    generator.tokenizer.save_pretrained(output_dir)
    return pd.DataFrame(reward.rollouts), resumed_step


def reward_curve(rollouts: pd.DataFrame) -> pd.DataFrame:
    """Per GRPO step: mean reward, mean acquisition reward of verified samples, parse and verification rates."""
    grouped = rollouts.groupby("step")
    curve = pd.DataFrame({  # the columns of CURVE_COLUMNS
        "mean_reward": grouped["reward"].mean(),
        "parse_rate": grouped["parsed"].mean(),
        "verified_rate": grouped["verified"].mean(),
        "mean_verified_acquisition": rollouts[rollouts["verified"]].groupby("step")["acquisition_reward"].mean(),
    })
    return curve.reset_index()
