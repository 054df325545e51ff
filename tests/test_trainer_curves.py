"""A trainer's curves where `report_to` sends them (real TRL SFT steps on a tiny model, DVCLive read back by `dvc
plots show` in a real DVC repository), the setting's check for its package, and bf16 checkpoints."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from acqsynth.config import FinetuneConfig, PolicyUpdateConfig, TinyModelConfig
from acqsynth.finetune import finetune_student
from acqsynth.models.loading import load_model, save_checkpoint
from acqsynth.models.tiny import build_llama, train_tokenizer

PAIRS = pd.DataFrame({"prompt": [f"Q: {a} plus {b}?\nA:" for a, b in zip(range(8), range(8, 16))],
                      "completion": [f" {a + b}" for a, b in zip(range(8), range(8, 16))]})


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    tokenizer = train_tokenizer(list(PAIRS["prompt"] + PAIRS["completion"]), 300)
    model = build_llama(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tokenizer,
                        64, seed=0)
    path = tmp_path_factory.mktemp("student") / "model"
    save_checkpoint(model, tokenizer, path)
    return path


def _git_dvc_repo(root):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, env=env)
    return env


def test_dvclive_curves_of_sft_appear_in_dvc_plots(student_dir, tmp_path):
    pytest.importorskip("dvclive")
    env = _git_dvc_repo(tmp_path)
    curves = tmp_path / "logs" / "finetune"
    config = FinetuneConfig(epochs=2, batch_size=4, max_length=32, report_to="dvclive")
    log, _ = finetune_student(load_model(student_dir, training=True), PAIRS, config, tmp_path / "out",
                              tmp_path / "checkpoints", curves, seed=0)
    shown = subprocess.run([sys.executable, "-m", "dvc", "plots", "show", "--json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout
    plotted = json.loads(shown)["data"]
    assert "logs/finetune/plots/metrics/loss.tsv" in plotted, list(plotted)
    loss = (curves / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert loss[0].split("\t") == ["step", "loss"] and len(loss) - 1 == len(log) == 4
    declared = (tmp_path / "logs" / "dvc.yaml").read_text()
    assert declared.count("finetune/plots/metrics") == 1, declared


def test_report_to_names_the_package_it_needs(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    for config in (FinetuneConfig, PolicyUpdateConfig):
        assert config(report_to="none").report_to == "none"
        with pytest.raises(ValidationError, match="'dvclive' needs the dvclive package: pip install dvclive"):
            config(report_to="dvclive")
        with pytest.raises(ValidationError, match="report_to"):
            config(report_to="mlflow")


def test_a_checkpoint_trained_in_bf16_is_saved_in_bf16(student_dir, tmp_path):
    from safetensors import safe_open

    student = load_model(student_dir, training=True)
    save_checkpoint(student.model, student.tokenizer, tmp_path / "bf16", bf16=True)
    with safe_open(str(tmp_path / "bf16" / "model.safetensors"), "pt") as weights:
        dtypes = {weights.get_tensor(name).dtype for name in weights.keys()}
    assert dtypes == {torch.bfloat16}
    assert (tmp_path / "bf16" / "model.safetensors").stat().st_size < 0.6 * (
        student_dir / "model.safetensors").stat().st_size
    assert load_model(tmp_path / "bf16").model.dtype == torch.float32  # on the CPU it loads as float32
