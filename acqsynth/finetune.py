"""Finetune: supervised fine-tuning of the student on verified synthetic samples (TRL SFTTrainer), loss on the
answer only (prompt-completion format)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from acqsynth.config import FinetuneConfig
from acqsynth.domains.math import student_completion, student_prompt
from acqsynth.models.loading import LoadedModel
from acqsynth.resume import last_checkpoint


def sft_dataset(samples: pd.DataFrame):
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": [student_prompt(q) for q in samples["question"]],
        "completion": [student_completion(r, a) for r, a in zip(samples["reasoning"], samples["answer"], strict=True)],
    })


def finetune_student(student: LoadedModel, samples: pd.DataFrame, config: FinetuneConfig, output_dir: Path,
                     checkpoints: Path, seed: int) -> tuple[list[dict[str, float]], int]:
    """Train on `samples` (question, reasoning, answer), resuming from the newest checkpoint in `checkpoints` if a
    crashed run left one; save to `output_dir`. Returns the training log and the step it resumed from."""
    import torch
    from trl import SFTConfig, SFTTrainer

    if samples.empty:
        raise ValueError("finetune: no verified samples to fine-tune on")
    on_gpu = torch.cuda.is_available()
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
        gradient_checkpointing=False,
    )
    student.model.train()
    trainer = SFTTrainer(model=student.model, args=args, train_dataset=sft_dataset(samples),
                         processing_class=student.tokenizer)
    last, resumed_step = last_checkpoint(checkpoints)
    trainer.train(resume_from_checkpoint=last)
    student.model.eval()
    student.model.save_pretrained(output_dir)
    student.tokenizer.save_pretrained(output_dir)
    return [entry for entry in trainer.state.log_history if "loss" in entry], resumed_step
