"""Finetune: supervised fine-tuning of the student on verified synthetic samples (TRL SFTTrainer), loss on the
answer only (prompt-completion format)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from acqsynth import progress
from acqsynth.config import FinetuneConfig
from acqsynth.models.loading import LoadedModel, best_device, save_checkpoint
from acqsynth.trainer_curves import add_curve_logger
from acqsynth.resume import last_checkpoint


def sft_dataset(samples: pd.DataFrame):
    """The prompt-completion pairs as data/selected.parquet holds them (acqsynth.stages.select writes them)."""
    from datasets import Dataset

    return Dataset.from_dict({"prompt": list(samples["prompt"]), "completion": list(samples["completion"])})


def _lora(config: FinetuneConfig):
    if config.lora is None:
        return None
    from peft import LoraConfig

    return LoraConfig(r=config.lora.rank, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                      target_modules=list(config.lora.target_modules), task_type="CAUSAL_LM")


def finetune_student(student: LoadedModel, samples: pd.DataFrame, config: FinetuneConfig, output_dir: Path,
                     checkpoints: Path, curves: Path, seed: int) -> tuple[list[dict[str, float]], int]:
    """Train on `samples` (question, reasoning, answer), resuming from the newest checkpoint in `checkpoints` if a
    crashed run left one; save to `output_dir`, the loss curve also to `curves` when `config.report_to` says.
    Returns the training log and the step it resumed from."""
    import torch
    from trl import SFTConfig, SFTTrainer

    if samples.empty:
        raise ValueError("finetune: no verified samples to fine-tune on")
    on_gpu = best_device().startswith("cuda")
    args = SFTConfig(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        max_length=config.max_length,
        completion_only_loss=True,
        logging_steps=1,
        save_strategy="steps",
        save_steps=config.checkpoint_every,
        save_total_limit=1,
        report_to="none",
        seed=seed,
        use_cpu=not on_gpu,
        bf16=on_gpu and torch.cuda.is_bf16_supported(),
        activation_checkpointing=False,  # TRL defaults it on (and deprecates the old name)
    )
    student.model.train()
    trainer = SFTTrainer(model=student.model, args=args, train_dataset=sft_dataset(samples),
                         processing_class=student.tokenizer, peft_config=_lora(config))
    last, resumed_step = last_checkpoint(checkpoints)
    add_curve_logger(trainer, config.report_to, curves, resume=last is not None)
    progress.train(trainer, "SFT of the student", resume_from_checkpoint=last)
    # A LoRA adapter is merged into the weights: every later stage loads a plain checkpoint.
    model = trainer.model.merge_and_unload() if config.lora is not None else trainer.model
    model.eval()
    save_checkpoint(model, student.tokenizer, output_dir, bf16=args.bf16)
    return [entry for entry in trainer.state.log_history if "loss" in entry], resumed_step
