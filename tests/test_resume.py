"""Resume without loss: a stage killed mid-way and run again writes exactly the rows of an uninterrupted run."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from acqsynth import artifacts, stages
from acqsynth.config import Layout, load_config, write_params
from acqsynth.resume import ShardStore, fingerprint


def test_shard_store_resumes_and_refuses_stale_or_altered_shards(tmp_path):
    store = ShardStore(tmp_path / "s", fingerprint("inputs", 1))
    store.write(0, pd.DataFrame({"x": [1, 2]}))
    assert ShardStore(tmp_path / "s", fingerprint("inputs", 1)).done(0)
    with pytest.raises(ValueError, match=r"shards \[1\] are missing"):
        store.assemble(2)
    store.write(1, pd.DataFrame({"x": [3]}))
    assert store.assemble(2)["x"].tolist() == [1, 2, 3]
    (tmp_path / "s" / "shard-000001.parquet").write_bytes(b"altered")
    assert not ShardStore(tmp_path / "s", fingerprint("inputs", 1)).done(1)
    assert not ShardStore(tmp_path / "s", fingerprint("other inputs", 1)).done(0)



def test_shards_of_other_code_are_started_over(tmp_path, monkeypatch):
    final = tmp_path / "verified.parquet"
    stages._shard_store("verify", final, "inputs").write(0, pd.DataFrame({"verified": [True]}))
    assert stages._shard_store("verify", final, "inputs").done(0)
    assert "acqsynth/verify/samples.py" in stages.code_hashes("verify")
    edited = {**stages.code_hashes("verify"), "acqsynth/verify/samples.py": "another version"}
    monkeypatch.setattr(stages, "code_hashes", lambda name: edited)
    assert not stages._shard_store("verify", final, "inputs").done(0)


def _workspace(smoke_workspace, root, overrides):
    shutil.copytree(smoke_workspace, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    write_params(root / "params.yaml", params)
    return load_config(root / "params.yaml"), Layout(root)


def _kill_after_shards(root, stage, manifest, shards):
    """Run `stage` in its own process and SIGKILL it once `shards` shards are listed; return how many were."""
    code = (f"from acqsynth import stages; from acqsynth.config import Layout, load_config; "
            f"stages.{stage}(load_config('params.yaml'), Layout())")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    listed = 0
    while process.poll() is None and time.monotonic() < deadline:
        try:
            listed = len(json.loads(manifest.read_text())["shards"])
        except (OSError, ValueError, KeyError):
            listed = 0
        if listed >= shards:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()
    return listed


def _with_verified_seeds(layout: Layout) -> None:
    """A verified table of the smoke seed problems (the smoke generator itself writes few verified samples): enough
    rows for several shards."""
    from acqsynth.domains.sample import format_sample

    seeds = artifacts.read_table(layout.split("seed"))
    seeds = seeds[seeds["domain"] == "math"].reset_index(drop=True)
    artifacts.write_table(layout.verified, pd.DataFrame({
        "id": [f"gen-{i:06d}" for i in range(len(seeds))], "domain": "math", "seed_id": seeds["id"],
        "generator": "models/generator_grpo@000000000000",
        "completion": [format_sample(q, r, a) for q, r, a in zip(seeds["question"], seeds["reasoning"],
                                                                 seeds["answer"])],
        "parsed": True, "parse_error": "", "question": seeds["question"], "reasoning": seeds["reasoning"],
        "answer": seeds["answer"], "verified": True, "reason": "", "verification": "the seed set's own sample"}))


@pytest.mark.parametrize(
    ("stage", "output", "overrides"),
    [
        ("generate", "generated", {"generate": {"n_samples": 48, "batch_size": 1}}),
        ("acquisition_score", "scored", {"acquisition_score": {"batch_size": 1}}),
    ],
)
def test_killed_stage_resumes_to_the_uninterrupted_result(smoke_workspace, tmp_path, stage, output, overrides):
    config, reference = _workspace(smoke_workspace, tmp_path / "reference", overrides)
    if stage == "acquisition_score":
        _with_verified_seeds(reference)
    getattr(stages, stage)(config, reference)
    expected = artifacts.read_table(getattr(reference, output))

    config, layout = _workspace(smoke_workspace, tmp_path / "killed", overrides)
    if stage == "acquisition_score":
        _with_verified_seeds(layout)
    final = getattr(layout, output)
    before = artifacts.content_hash(final)
    manifest = final.parent / f".{final.name}.shards" / "manifest.json"
    listed = _kill_after_shards(layout.root, stage, manifest, shards=2)
    assert 2 <= listed < len(expected), "the stage was not interrupted mid-way"
    assert artifacts.content_hash(final) == before  # nothing half-written replaced the last good artifact

    getattr(stages, stage)(config, layout)
    pd.testing.assert_frame_equal(artifacts.read_table(final), expected)
    assert not manifest.parent.exists()


def _kill_after_checkpoint(root, stage, checkpoints):
    """Run `stage` in its own process and SIGKILL it once a complete trainer checkpoint exists."""
    code = (f"from acqsynth import stages; from acqsynth.config import Layout, load_config; "
            f"stages.{stage}(load_config('params.yaml'), Layout())")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        if any(checkpoints.glob("checkpoint-*/trainer_state.json")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait()
    return process.returncode


@pytest.mark.parametrize(
    ("stage", "output", "overrides"),
    [
        ("policy_update", "policy", {"policy_update": {"max_steps": 6, "checkpoint_every": 2}}),
        ("finetune", "finetuned_student", {"finetune": {"epochs": 4.0, "batch_size": 1, "checkpoint_every": 2}}),
    ],
)
def test_killed_trainer_resumes_from_its_last_checkpoint(smoke_workspace, tmp_path, stage, output, overrides):
    config, layout = _workspace(smoke_workspace, tmp_path / "killed", overrides)
    final = getattr(layout, output)
    before = artifacts.content_hash(final)
    checkpoints = final.parent / f".{final.name}.checkpoints"
    assert _kill_after_checkpoint(layout.root, stage, checkpoints) == -signal.SIGKILL, "not interrupted mid-way"
    assert artifacts.content_hash(final) == before

    metrics = getattr(stages, stage)(config, layout)
    assert metrics["resumed_from_step"] >= 2
    assert not checkpoints.exists()
    if stage == "policy_update":
        rollouts = artifacts.read_table(layout.rollouts)
        per_step = config.policy_update.prompts_per_step * config.policy_update.num_generations
        assert rollouts.groupby("step").size().to_dict() == {step: per_step for step in range(6)}


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.pt"])
def test_a_damaged_checkpoint_is_skipped_for_the_one_before(tmp_path, caplog, damaged):
    import torch
    from safetensors.torch import save_file

    from acqsynth.resume import last_checkpoint

    for step in (1, 2):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        save_file({"weight": torch.ones(64, 64)}, checkpoint / "model.safetensors")
        torch.save({"state": torch.zeros(64, 64)}, checkpoint / "optimizer.pt")
        (checkpoint / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == (str(tmp_path / "checkpoint-2"), 2)
    file = tmp_path / "checkpoint-2" / damaged
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    assert last_checkpoint(tmp_path) == (str(tmp_path / "checkpoint-1"), 1)
    assert f"discarding a damaged checkpoint: {file}" in caplog.text
    assert not (tmp_path / "checkpoint-2").exists()
    (tmp_path / "checkpoint-1" / "model.safetensors").write_bytes(b"\x00" * 10)
    assert last_checkpoint(tmp_path) == (None, 0)  # a fresh start
