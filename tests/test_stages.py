"""The stages end to end on the smoke profile (plain functions; the Prefect and DVC entry points have their own
tests), and the transactional quality gates on a corrupted artifact."""

import json

import pandas as pd
import pytest

from acqsynth import artifacts, stages
from acqsynth.config import Layout, load_config
from acqsynth.domains.math import parse_sample
from acqsynth.models.loading import CheckpointError, check_checkpoint
from acqsynth.quality.gates import GateFailed


def test_every_stage_wrote_its_artifacts(smoke_workspace):
    layout = Layout(smoke_workspace)
    for split in stages.SPLITS:
        assert len(artifacts.read_table(layout.split(split))) > 0
    for checkpoint in (layout.base_generator, layout.base_student, layout.policy, layout.finetuned_student):
        check_checkpoint(checkpoint)
    for stage in stages.STAGES:
        assert "seconds" in artifacts.read_json(layout.metrics / f"{stage}.json")
    assert layout.report.read_text().startswith("# acqsynth run: profile `smoke`")
    assert (layout.root / "reports" / "policy_rewards.png").stat().st_size > 0


def test_splits_are_disjoint(smoke_workspace):
    layout = Layout(smoke_workspace)
    questions = {split: set(artifacts.read_table(layout.split(split))["question"]) for split in stages.SPLITS}
    for train_split in ("seed", "pool", "pretrain"):
        assert not questions["eval"] & questions[train_split]
    assert not questions["forget"] & questions["pretrain"]


def test_rows_carry_provenance_and_verification(smoke_workspace):
    layout = Layout(smoke_workspace)
    seeds = set(artifacts.read_table(layout.split("seed"))["id"])
    generated = artifacts.read_table(layout.generated)
    assert set(generated["seed_id"]) <= seeds
    assert generated["generator"].str.match(r"^models/generator_grpo@[0-9a-f]{12}$").all()
    verified = artifacts.read_table(layout.verified)
    rejected = artifacts.read_table(layout.verified.with_name("rejected.parquet"))
    assert len(verified) + len(rejected) == len(generated)
    assert (verified["reason"] == "").all() and (rejected["reason"] != "").all()
    for row in verified.itertuples():
        assert parse_sample(row.completion).ok
    scored = artifacts.read_table(layout.scored)
    assert list(scored["id"]) == list(verified["id"])
    config = load_config(smoke_workspace / "params.yaml")
    low, high = config.acquisition_score.confidence_clip
    assert scored["confidence"].between(low, high).all()
    assert scored["answer_variance"].between(1 / config.acquisition_score.answer_variance_samples, 1).all()
    assert (scored["gradient_magnitude"] > 0).all()
    assert scored["proximity"].between(-1, 1).all()
    assert (scored["diversity"] >= 0).all()


def test_rollouts_reward_matches_verification(smoke_workspace):
    config = load_config(smoke_workspace / "params.yaml")
    reward = config.policy_update.reward
    rollouts = artifacts.read_table(Layout(smoke_workspace).rollouts)
    expected_rows = config.policy_update.max_steps * config.policy_update.prompts_per_step * \
        config.policy_update.num_generations
    assert len(rollouts) == expected_rows
    failed = rollouts[~rollouts["verified"]]
    assert (failed["acquisition_reward"] == reward.failed_verification).all()
    format_term = (rollouts["reward"] - rollouts["acquisition_reward"]).to_numpy()
    assert format_term == pytest.approx(reward.format_weight * rollouts["format_reward"].to_numpy())


def test_evaluation_metrics_are_accuracies(smoke_workspace):
    metrics = json.loads((smoke_workspace / "metrics" / "evaluate.json").read_text())
    for part in ("in_domain", "forgetting"):
        for key in ("before_accuracy", "after_accuracy"):
            assert 0.0 <= metrics[part][key] <= 1.0


def test_failed_gate_keeps_the_previous_good_artifact(smoke_workspace, tmp_path):
    """Corrupt the verified table (duplicate ids): the acquisition-score gate fails with a readable report and
    data/scored.parquet keeps its last good version."""
    layout = Layout(smoke_workspace)
    config = load_config(smoke_workspace / "params.yaml")
    verified_backup = layout.verified.read_bytes()
    good_scored = artifacts.content_hash(layout.scored)
    verified = artifacts.read_table(layout.verified)
    artifacts.write_table(layout.verified, pd.concat([verified, verified.head(1)], ignore_index=True))
    try:
        with pytest.raises(GateFailed) as failure:
            stages.acquisition_score(config, layout)
        assert "id: expect_column_values_to_be_unique" in str(failure.value)
        assert str(layout.scored) in str(failure.value)
        assert artifacts.content_hash(layout.scored) == good_scored
        assert (layout.quality_reports / "acquisition_score.json").is_file()
    finally:
        layout.verified.write_bytes(verified_backup)


def test_incomplete_checkpoint_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="missing model weights"):
        check_checkpoint(tmp_path)


def test_bad_artifacts_stop_a_stage_with_a_named_error(smoke_workspace, tmp_path):
    import shutil

    from acqsynth.artifacts import ArtifactError

    root = tmp_path / "workspace"
    shutil.copytree(smoke_workspace, root)
    layout, config = Layout(root), load_config(root / "params.yaml")
    generated = artifacts.read_table(layout.generated)
    artifacts.write_table(layout.generated, generated.head(0))
    with pytest.raises(ArtifactError, match="generated.parquet: no generated samples"):
        stages.verify(config, layout)
    seeds = artifacts.read_table(layout.split("seed"))
    artifacts.write_table(layout.split("seed"), seeds.assign(comment="x"))
    with pytest.raises(ArtifactError, match=r"seed.parquet: unexpected columns \['comment'\]"):
        stages.generate(config, layout)
    artifacts.write_table(layout.split("seed"), seeds.drop(columns=["answer"]))
    with pytest.raises(ArtifactError, match=r"seed.parquet: missing columns \['answer'\]"):
        stages.generate(config, layout)
