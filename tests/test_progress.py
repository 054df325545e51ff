"""Progress of long work: the milestone lines a Prefect run's logs get, and a trainer's progress in place of its
printed log dicts."""

import logging

import pytest

from acqsynth import progress


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def progress_lines():
    # Listen on the logger itself: the Prefect layer stops its lines at the run (propagate False).
    logger = logging.getLogger("acqsynth.progress")
    handler, level = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_loop_is_logged_at_each_quarter(progress_lines):
    with progress.progress("generate", 10) as bar:
        for step in range(10):
            bar.advance(1, f"loss {step}")
    assert progress_lines() == ["generate: 3/10 (30%), loss 2", "generate: 5/10 (50%), loss 4",
                                "generate: 8/10 (80%), loss 7", "generate: 10/10 (100%), loss 9"]


def test_a_big_step_logs_once_and_quiet_work_not_at_all(progress_lines):
    with progress.progress("shards", 4) as bar:
        bar.advance(3)
        bar.advance(1)
    with progress.progress(None, 5) as bar:
        bar.advance(5)
    assert progress_lines() == ["shards: 3/4 (75%)", "shards: 4/4 (100%)"]


def test_a_trainer_shows_its_progress_not_a_dict_per_step(progress_lines, tmp_path, capsys):
    """A real transformers Trainer on a tiny model: the step lines come from `progress.train`, and the printed
    `{'loss': ...}` dicts of the library's callbacks are gone."""
    import torch
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16))
    data = Dataset.from_dict({"input_ids": [[1, 2, 3, 4]] * 8, "labels": [[1, 2, 3, 4]] * 8})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=2, logging_steps=1,
                             report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=data)
    progress.train(trainer, "SFT")
    lines = progress_lines()
    assert [line.split(",")[0] for line in lines] == ["SFT: 1/4 (25%)", "SFT: 2/4 (50%)", "SFT: 3/4 (75%)",
                                                      "SFT: 4/4 (100%)"]
    assert all("loss" in line for line in lines[1:])  # the loss logged at the step before
    assert "{'loss'" not in capsys.readouterr().out
