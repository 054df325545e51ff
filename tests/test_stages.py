"""The stages end to end on the smoke profile (plain functions; the Prefect and DVC entry points have their own
tests), and the transactional quality gates on a corrupted artifact."""

import json
import shutil

import pandas as pd
import pytest

from acqsynth import artifacts, stages
from acqsynth.config import Layout, load_config
from acqsynth.domains.sample import parse_sample
from acqsynth.models.loading import CheckpointError, check_checkpoint
from acqsynth.quality.gates import GateFailed


def test_every_stage_wrote_its_artifacts(smoke_workspace):
    layout = Layout(smoke_workspace)
    for split in stages.SPLITS:
        assert len(artifacts.read_table(layout.split(split))) > 0
    for checkpoint in (layout.base_generator, layout.base_student, layout.policy, layout.finetuned_student):
        check_checkpoint(checkpoint)
    for stage in stages.PIPELINE:
        assert "seconds" in artifacts.read_json(layout.root / stage.metrics)
    assert layout.report.read_text().startswith("# acqsynth run: profile `smoke`")
    assert (layout.root / "reports" / "policy_rewards.png").stat().st_size > 0


def test_every_checkpoint_has_a_model_card_and_a_real_max_length(smoke_workspace):
    from huggingface_hub import ModelCard
    from transformers import AutoConfig, AutoTokenizer

    layout = Layout(smoke_workspace)
    cards = {path: ModelCard.load(path / "README.md") for path in (layout.base_generator, layout.base_student,
                                                                    layout.policy, layout.finetuned_student)}
    for path, card in cards.items():
        assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation", path
        assert AutoTokenizer.from_pretrained(path).model_max_length == \
            AutoConfig.from_pretrained(path).max_position_embeddings  # not transformers' 1e30 for "unset"
    student = cards[layout.finetuned_student].data.to_dict()["acqsynth"]
    assert student["made_from"] == {"base student": artifacts.content_hash(layout.base_student),
                                    "training set (data/selected.parquet)": artifacts.content_hash(layout.selected)}
    assert student["settings"]["finetune"] == load_config(smoke_workspace / "params.yaml").finetune.model_dump(
        mode="json")
    assert student["results"]["n_samples"] == artifacts.read_json(layout.stage_metrics("finetune"))["n_samples"]
    assert "math_base_student_eval_accuracy" in cards[layout.base_student].data.to_dict()["acqsynth"]["results"]
    assert "mcq: the first 50% of its examples" in cards[layout.base_student].text  # the tiny and smoke default
    assert "the first" not in cards[layout.base_generator].text
    assert cards[layout.policy].text.lstrip().startswith("# acqsynth GRPO generator")


def test_report_audits_the_kept_data(smoke_workspace):
    layout = Layout(smoke_workspace)
    verify = artifacts.read_json(layout.metrics / "verify.json")
    report = layout.report.read_text()
    assert f"| copy rate (copies of seed/pool/pretrain/eval questions, over parsed samples) | " \
           f"{100 * verify['copy_rate']:.1f}%" in report
    assert "| difficulty matches the seed's | " in report
    for kind, share in verify["difficulty_mix"].items():
        assert f"| difficulty {kind} | {100 * share:.1f}% |" in report
    assert ("kept answers the reference solver confirms" in report) == ("reference_confirmed_rate" in verify)


def test_splits_are_disjoint(smoke_workspace):
    layout = Layout(smoke_workspace)
    questions = {split: set(artifacts.read_table(layout.split(split))["question"]) for split in stages.SPLITS}
    for train_split in ("seed", "pool", "pretrain"):
        assert not questions["eval"] & questions[train_split]
        assert not questions["test"] & (questions[train_split] | questions["eval"])
    domains = {split: set(artifacts.read_table(layout.split(split))["domain"]) for split in stages.SPLITS}
    assert all(found == {"math", "mcq", "code"} for found in domains.values())


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
    # What each kept sample passed (the smoke profile turns the reference solver off: the calculator alone).
    assert verified["verification"].str.startswith("calculator: ").all()
    assert (rejected["verification"] == "").all()
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
    assert reward.mode == "gate" and reward.verified_bonus > 0  # the smoke profile: unverified rollouts count
    failed = rollouts[~rollouts["verified"]]
    assert (failed["acquisition_reward"] == 0.0).all()
    bonus = (rollouts["reward"] - rollouts["acquisition_reward"]
             - reward.format_weight * rollouts["format_reward"]).to_numpy()
    assert bonus == pytest.approx(reward.verified_bonus * rollouts["verified"].to_numpy())


def test_evaluation_metrics_are_accuracies(smoke_workspace):
    metrics = json.loads((smoke_workspace / "metrics" / "evaluate.json").read_text())
    assert metrics["domain"] == "math"
    assert set(metrics["forgetting"]) == {"mcq", "code"}
    for part in (metrics["in_domain"], *metrics["forgetting"].values()):
        for key in ("before_accuracy", "after_accuracy"):
            assert 0.0 <= part[key] <= 1.0


def test_in_domain_accuracy_by_difficulty_adds_up(smoke_workspace):
    layout = Layout(smoke_workspace)
    in_domain = artifacts.read_json(layout.metrics / "evaluate.json")["in_domain"]
    parts = in_domain["by_difficulty"].values()
    assert sum(part["n"] for part in parts) == in_domain["n"]
    for key in ("before_accuracy", "after_accuracy"):
        assert sum(part[key] * part["n"] for part in parts) / in_domain["n"] == pytest.approx(in_domain[key])
    held_out = artifacts.read_table(layout.split("eval"))
    held_out = held_out[held_out["domain"] == "math"]
    assert set(in_domain["by_difficulty"]) == {stages.difficulty_of("math", q, r, s) for q, r, s in
                                               zip(held_out["question"], held_out["reasoning"], held_out["skill"])}


def test_evaluate_scores_the_test_split_when_asked(smoke_workspace, tmp_path):
    from acqsynth.config import profile_params, resolve

    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    config = resolve({**profile_params("smoke"), "evaluate": {"split": "test", "max_new_tokens": 64}})
    metrics = stages.evaluate(config, layout)
    test = artifacts.read_table(layout.split("test"))
    assert metrics["split"] == "test" and metrics["in_domain"]["n"] == config.prepare.n_test["math"]
    predictions = artifacts.read_table(layout.predictions)
    assert set(predictions["id"]) == set(test["id"])
    smoke_prepare = profile_params("smoke")["prepare"]
    no_test = resolve({**profile_params("smoke"), "evaluate": {"split": "test"},
                       "prepare": {**smoke_prepare, "n_test": {"math": 16, "mcq": 0, "code": 16}}})
    artifacts.write_table(layout.split("test"), test[test["domain"] != "mcq"])
    with pytest.raises(artifacts.ArtifactError, match=r"test.parquet: no test examples of \['mcq'\]"):
        stages.evaluate(no_test, layout)


def test_failed_gate_keeps_the_previous_good_artifact(smoke_workspace, tmp_path):
    """Corrupt the verified table (duplicate ids): acquisition_score's check of what it reads fails with a readable
    report naming the table, and data/scored.parquet keeps its last good version."""
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
        assert f"failed for {layout.verified}" in str(failure.value)
        assert artifacts.content_hash(layout.scored) == good_scored
        assert (layout.quality_reports / "acquisition_score_reads_verified.json").is_file()
    finally:
        layout.verified.write_bytes(verified_backup)


def test_incomplete_checkpoint_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="missing model weights"):
        check_checkpoint(tmp_path)


@pytest.mark.parametrize("source", ["path", "models/base/student", "./student"])
def test_a_missing_model_directory_is_named_not_looked_up_on_the_hub(tmp_path, monkeypatch, source):
    from acqsynth.models.loading import load_model, missing_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a lookup would be tried, and fail slowly, without the check
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "models" / "base" / "student" if source == "path" else source
    with pytest.raises(CheckpointError, match=rf"^{missing}: no such model directory"):
        load_model(missing)
    assert missing_model(str(missing)).startswith(f"{missing}: no such model directory")


def test_a_truncated_checkpoint_is_named(smoke_workspace, tmp_path):
    from acqsynth.models.loading import load_model

    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    weights = layout.base_student / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=rf"^{layout.base_student}: cannot be loaded \(SafetensorError"):
        load_model(layout.base_student)


def test_bad_artifacts_stop_a_stage_with_a_named_error(smoke_workspace, tmp_path):
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


def _workspace_copy(smoke_workspace, tmp_path):
    import shutil

    root = tmp_path / "workspace"
    shutil.copytree(smoke_workspace, root)
    return root, Layout(root)


@pytest.mark.parametrize("damage", ["poisoned", "truncated"])
def test_a_damaged_base_evaluation_cache_is_recomputed_not_trusted(smoke_workspace, tmp_path, caplog, damage):
    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    config = load_config(root / "params.yaml")
    truth = artifacts.read_json(layout.metrics / "evaluate.json")["in_domain"]["before_accuracy"]
    (cache,) = (root / "models" / ".base_evaluation").glob("*.parquet")
    if damage == "poisoned":  # every base answer marked correct: the gain would look negative
        artifacts.write_table(cache, artifacts.read_table(cache).assign(correct=True))
    else:
        cache.write_bytes(cache.read_bytes()[:100])
    metrics = stages.evaluate(config, layout)
    assert metrics["in_domain"]["before_accuracy"] == truth
    assert "discarding the base student's cached evaluation" in caplog.text and cache.name in caplog.text
    (rewritten,) = (root / "models" / ".base_evaluation").glob("*.parquet")
    assert stages.evaluate(config, layout)["in_domain"]["before_accuracy"] == truth
    assert caplog.text.count("discarding") == 1 and rewritten.exists()


def test_a_table_changed_after_its_gate_is_caught_when_read(smoke_workspace, tmp_path):
    """Non-finite scores written into data/scored.parquet after its gate stop select; an infinite selection score
    in data/selected.parquet stops finetune; repeated ids in data/generated.parquet stop verify; an empty question
    in a prepared split stops the next stage that reads it. None replaces what it would write."""
    import numpy as np

    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    config = load_config(root / "params.yaml")
    scored = artifacts.read_table(layout.scored)
    assert len(scored) > 0
    selected_before = artifacts.content_hash(layout.selected)
    artifacts.write_table(layout.scored, scored.assign(acquisition_score=[np.inf] + [np.nan] * (len(scored) - 1)))
    with pytest.raises(GateFailed, match=r"quality gate 'select_reads_scored' failed for .*scored.parquet"):
        stages.select(config, layout)
    assert artifacts.content_hash(layout.selected) == selected_before
    verified = artifacts.read_table(layout.verified)
    artifacts.write_table(layout.verified, verified.assign(question=[None] + list(verified["question"][1:])))
    with pytest.raises(GateFailed, match=r"'acquisition_score_reads_verified' failed for .*verified.parquet:\n"
                                         r"(.*\n)*  question: expect_column_values_to_not_be_null"):
        stages.acquisition_score(config, layout)
    selected = artifacts.read_table(layout.selected)
    artifacts.write_table(layout.selected, selected.assign(selection_score=np.inf))
    student_before = artifacts.content_hash(layout.finetuned_student)
    with pytest.raises(GateFailed, match=r"'finetune_reads_selected' failed for .*selected.parquet:\n"
                                         r"  selection_score: "):
        stages.finetune(config, layout)
    assert artifacts.content_hash(layout.finetuned_student) == student_before
    generated = artifacts.read_table(layout.generated)
    verified_before = artifacts.content_hash(layout.verified)
    artifacts.write_table(layout.generated, generated.assign(id="same id"))
    with pytest.raises(GateFailed, match=r"'verify_reads_generated' failed for .*generated.parquet:\n"
                                         r"(.*\n)*  id: expect_column_values_to_be_unique"):
        stages.verify(config, layout)
    assert artifacts.content_hash(layout.verified) == verified_before
    seed = artifacts.read_table(layout.split("seed"))
    artifacts.write_table(layout.split("seed"), seed.assign(question=""))
    with pytest.raises(GateFailed, match=r"'read_seed' failed for .*seed.parquet:\n"
                                         r"(.*\n)*  question: expect_column_value_lengths_to_be_between"):
        stages.seed_centroids(config, layout)


@pytest.mark.parametrize(("select", "expected_source"), [
    ({"source": "seed", "method": "all"}, "seed"),
    ({"source": "pool", "method": "random", "budget": 5}, "pool"),
    ({"source": "pool", "method": "top_score", "budget": 5}, "pool"),
])
def test_select_chooses_the_arm_data(smoke_workspace, tmp_path, select, expected_source):
    from acqsynth.config import profile_params, resolve

    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    weights = {"confidence": 1.0, "proximity": 1.0, "diversity": 1.0, "gradient_magnitude": 1.0,
               "answer_variance": 1.0}
    config = resolve({**profile_params("smoke"), "select": select,
                      "policy_update": {"reward": {"weights": weights, "normalisation": "minmax"}}})
    metrics = stages.select(config, layout)
    chosen = artifacts.read_table(layout.selected)
    split = artifacts.read_table(layout.split(expected_source))
    split = split[split["domain"] == "math"]
    assert set(chosen["source"]) == {expected_source}
    assert set(chosen["id"]) <= set(split["id"])
    assert len(chosen) == metrics["n_selected"] == select.get("budget", len(split))
    assert chosen["verification"].isna().all()  # not generated: nothing verified them
    if select["method"] == "top_score":
        assert chosen["selection_score"].is_monotonic_decreasing
        assert chosen["selection_score"].between(0, 5).all()


def test_untrained_generator_is_the_base_generator(smoke_workspace, tmp_path):
    from acqsynth.config import profile_params, resolve

    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    config = resolve({**profile_params("smoke"), "policy_update": {"max_steps": 0}})
    metrics = stages.policy_update(config, layout)
    assert metrics["steps"] == 0 and metrics["first_step_mean_reward"] is None
    assert artifacts.content_hash(layout.policy) == artifacts.content_hash(layout.base_generator)
    assert artifacts.read_table(layout.rollouts).empty


def test_lora_finetune_merges_into_a_plain_checkpoint(smoke_workspace, tmp_path):
    from acqsynth.config import profile_params, resolve

    root, layout = _workspace_copy(smoke_workspace, tmp_path)
    config = resolve({**profile_params("smoke"), "finetune": {"lora": {"rank": 4, "alpha": 8}}})
    stages.finetune(config, layout)
    check_checkpoint(layout.finetuned_student)
    assert not (layout.finetuned_student / "adapter_config.json").exists()
    from acqsynth.models.loading import load_model

    tuned, base = load_model(layout.finetuned_student), load_model(layout.base_student)
    changed = [name for name, weight in tuned.model.state_dict().items()
               if not (weight == base.model.state_dict()[name]).all()]
    assert changed and all("proj" in name for name in changed)


def test_a_run_exports_as_a_hugging_face_dataset_with_its_card(smoke_workspace, tmp_path):
    import yaml
    from datasets import load_dataset

    from acqsynth.export import write_dataset

    config = load_config(smoke_workspace / "params.yaml")
    layout = Layout(smoke_workspace)
    out = tmp_path / "dataset"
    written = write_dataset(config, layout, out)
    assert written[0] == "selected" and "scored" in written and "rejected" in written
    cache = tmp_path / "hf-cache"
    selected = load_dataset(str(out), "selected", split="train", cache_dir=str(cache))
    frame = artifacts.read_table(layout.selected)
    assert selected.num_rows == len(frame) and selected["prompt"] == list(frame["prompt"])
    # Each synthetic training sample keeps what its verification found.
    found = artifacts.read_table(layout.verified).set_index("id")["verification"]
    assert set(selected["source"]) == {"synthetic"}
    assert selected["verification"] == [found[i] for i in selected["id"]] and all(selected["verification"])
    # selected is the default config
    assert load_dataset(str(out), split="train", cache_dir=str(cache)).num_rows == len(frame)
    metadata = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])["acqsynth"]
    assert metadata["generator"]["content_hash"] == artifacts.content_hash(layout.policy)
    assert metadata["verification"]["verified_rate"] == artifacts.read_json(layout.stage_metrics("verify"))[
        "verified_rate"]
    assert metadata["reward"] == config.policy_update.reward.model_dump(mode="json")
    # A re-export of other data to the same directory is read as that data, not from HF's cache of the first.
    other = tmp_path / "other"
    shutil.copytree(smoke_workspace / "data", other / "data")
    shutil.copytree(smoke_workspace / "metrics", other / "metrics")
    artifacts.write_table(Layout(other).selected, frame.iloc[:-1])
    write_dataset(config, Layout(other), out)
    assert load_dataset(str(out), "selected", split="train", cache_dir=str(cache)).num_rows == len(frame) - 1
