"""The comparison: arms as params overrides, reuse of computed runs, the statistics, and (slow) the whole smoke
comparison as a real Prefect flow run."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from acqsynth import artifacts
from acqsynth.comparison.arms import (MAIN, SEEDLESS_RUNS, Arm, main_arms, plan, set_args, size_arms, transfer_arms,
                                      waves)
from acqsynth.comparison.report import (_plot_grpo_diagnostics, audit_markdown, control_lines, difficulty_markdown,
                                        primary_markdown, report_dir, summary_markdown)
from acqsynth.comparison.runs import completed_results, data_summary, run_arm, run_config, run_dir, run_fingerprint
from acqsynth.comparison.statistics import (mean_ci95, primary_comparisons, results_table, reward_curves, summary_json,
                                            summary_table, weakest_difficulty)
from acqsynth.config import REWARD_NAMES, Layout, profile_params, resolve
from tests.conftest import REPO


def _config(**compare_values):
    return resolve({**profile_params("smoke"), "compare": {**profile_params("smoke")["compare"], **compare_values}})


def test_every_baseline_and_reward_has_an_arm_that_resolves():
    config = _config()
    names = [arm.name for arm in main_arms(config)]
    assert names[:7] == ["seed_only", "random_pool", "filtered_pool", "original", "rejection_sampling", "format_only",
                         "verify_only"]
    assert names[7:] == [f"acqsyn_{name}" for name in REWARD_NAMES] + ["acqsyn_combined"]
    for arm in main_arms(config):
        arm_config = run_config(config, arm, seed=2)
        assert arm_config.seed == 2 and arm_config.data_seed == config.data_seed
        if arm.name not in ("seed_only",):
            assert arm_config.select.budget == config.compare.budget
    rejection = run_config(config, next(a for a in main_arms(config) if a.name == "rejection_sampling"), 0)
    original = run_config(config, next(a for a in main_arms(config) if a.name == "original"), 0)
    assert rejection.policy_update.max_steps == original.policy_update.max_steps == 0
    assert rejection.generate.n_samples == config.compare.rejection_n * original.generate.n_samples
    assert rejection.select.method == "top_score"
    single = run_config(config, next(a for a in main_arms(config) if a.name == "acqsyn_diversity"), 0)
    assert {k: v for k, v in single.policy_update.reward.weights.items() if v} == {"diversity": 1.0}
    assert single.policy_update.reward.mode == "gate"
    control = run_config(config, next(a for a in main_arms(config) if a.name == "verify_only"), 0)
    assert not any(control.policy_update.reward.weights.values()) and control.policy_update.reward.verified_bonus == 1


def test_unknown_arm_is_named_with_the_nearest_name():
    with pytest.raises(ValueError, match="^compare.arms: unknown 'acqsyn_novelty'.*; expected one of \\['seed_only'"):
        main_arms(_config(arms=["original", "acqsyn_novelty"]))
    with pytest.raises(ValueError, match="unknown 'acqsyn_confidance' \\(did you mean 'acqsyn_confidence'\\?\\)"):
        main_arms(_config(arms=["acqsyn_confidance"]))


def test_check_refuses_a_misspelt_arm_before_any_work(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from acqsynth.config import write_params
    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", {**profile_params("smoke"), "compare": {"arms": ["acqsyn_confidance"]}})
    for command in (["check"], ["compare"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "did you mean 'acqsyn_confidence'" in result.output, command
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()  # nothing ran


def test_mean_ci95_is_the_t_interval():
    values = [0.5, 0.6, 0.7]
    mean, half = mean_ci95(values)
    assert mean == pytest.approx(0.6)
    assert half == pytest.approx(stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3))
    assert math.isnan(mean_ci95([0.5])[1])


def _result(arm, seed, accuracy, group="arms"):
    return {"arm": arm, "group": group, "seed": seed, "metrics": {
        "verify": {"verified_rate": 0.5},
        "evaluate": {"in_domain": {"before_accuracy": 0.4, "after_accuracy": accuracy, "n": 10},
                     "forgetting": {"mcq": {"drop": 0.1}, "code": {"drop": 0.0}}}},
        "data": {"n": 8, "embedding_diversity": 0.3, "distinct_4grams": 0.9}}


def test_difference_from_original_is_paired_by_seed():
    results = [_result("original", s, a) for s, a in enumerate([0.40, 0.50, 0.60])]
    results += [_result("acqsyn_combined", s, a) for s, a in enumerate([0.45, 0.56, 0.64])]
    summary = summary_table(results_table(results, "math")).set_index("arm")
    # Differences 0.05, 0.06, 0.04: mean 0.05, sd 0.01, t(0.975, 2) = 4.3027, half-width 4.3027 * 0.01 / sqrt(3).
    assert summary.loc["acqsyn_combined", "diff_vs_original"] == pytest.approx(0.05)
    assert summary.loc["acqsyn_combined", "diff_ci95"] == pytest.approx(0.024841, abs=1e-6)
    assert math.isnan(summary.loc["original", "diff_vs_original"])
    assert summary.loc["original", "forgetting_mcq"] == pytest.approx(0.1)
    table = summary_markdown(summary.reset_index(), 0.4)
    assert "| acqsyn_combined | 3 | 55.0 ± " in table and "forgetting mcq" in table


def test_data_summary_gives_size_diversity_and_difficulty_mix(tmp_path):
    from acqsynth import artifacts

    layout = Layout(tmp_path)
    reasonings = ["5 + 3 = <<5+3=8>>8", "9 - 2 = <<9-2=7>>7", "2 * 3 = <<2*3=6>>6\n6 + 1 = <<6+1=7>>7", "no steps"]
    artifacts.write_table(layout.selected, pd.DataFrame({
        "id": ["a", "b", "c", "d"], "source": "synthetic", "selection_score": 0.0, "answer": ["8", "7", "7", "1"],
        "question": ["Tom has 5 pens and buys 3 more.", "Ann has 9 cups and breaks 2.",
                     "Sam buys 2 boxes of 3 eggs and finds 1 more.", "What is one?"], "reasoning": reasonings}))
    summary = data_summary(layout, "math")
    assert summary["n"] == 4 and 0 < summary["embedding_diversity"] < 1 and 0 < summary["distinct_4grams"] <= 1
    assert summary["difficulty_mix"] == {"1 steps": 0.5, "2 steps": 0.25, "unknown": 0.25}


def test_accuracy_by_difficulty_per_arm_under_the_base_student():
    results = [_result("original", 0, 0.4), _result("original", 1, 0.5)]
    for result, (one, two) in zip(results, [(0.6, 0.2), (0.8, 0.2)]):
        result["metrics"]["evaluate"]["in_domain"]["by_difficulty"] = {
            "1 steps": {"before_accuracy": 0.5, "after_accuracy": one, "n": 5},
            "2 steps": {"before_accuracy": 0.3, "after_accuracy": two, "n": 5}}
    table = difficulty_markdown(results_table(results, "math")).splitlines()
    assert table == ["| arm | 1 steps | 2 steps |", "|---|---|---|", "| base student | 50.0% | 30.0% |",
                     "| original | 70.0% | 20.0% |"]
    assert difficulty_markdown(results_table(results[:0] + [_result("x", 0, 0.1)], "math")) == ""


def test_grpo_curves_average_seeds_and_plot_the_weakest_difficulty(tmp_path):
    config = _config(seeds=2)
    for seed, (percentile, hard) in enumerate([(0.4, 0.2), (0.6, None)]):
        path = run_dir(tmp_path, config, "acqsyn_learnability", seed) / "metrics" / "policy_rewards.csv"
        path.parent.mkdir(parents=True)
        columns = {"step": [0, 1], "mean_reward": [0.1, 0.3], "verified_rate": [0.5, 0.7],
                   "acquisition_percentile": [percentile, percentile], "difficulty: 1 steps": [0.8, 1.0]}
        if hard is not None:  # seed 1 verified no two-step rollout, so its curve has no such column
            columns["difficulty: 2 steps"] = [hard, 0.0]
        pd.DataFrame(columns).to_csv(path, index=False)
    curves = reward_curves(tmp_path, config, ["acqsyn_learnability", "verify_only"], seeds=2)
    assert curves["step"].tolist() == [0, 1]
    assert curves["acquisition_percentile"].tolist() == pytest.approx([0.5, 0.5])
    assert curves["difficulty: 2 steps"].tolist() == pytest.approx([0.1, 0.0])  # the missing column counts as 0
    results = [_result("original", 0, 0.4)]
    results[0]["metrics"]["evaluate"]["in_domain"]["by_difficulty"] = {
        "1 steps": {"before_accuracy": 0.6, "after_accuracy": 0.6, "n": 5},
        "2 steps": {"before_accuracy": 0.3, "after_accuracy": 0.3, "n": 5}}
    weakest = weakest_difficulty(results_table(results, "math"))
    assert weakest == "2 steps"
    _plot_grpo_diagnostics(curves, weakest, 0.53, tmp_path / "diagnostics.png")
    assert (tmp_path / "diagnostics.png").read_bytes().startswith(b"\x89PNG")


def test_audit_table_averages_each_arms_data_over_seeds():
    results = [_result("original", 0, 0.4), _result("original", 1, 0.5), _result("random_pool", 0, 0.5)]
    results[0]["metrics"]["verify"] |= {"copy_rate": 0.02, "reference_confirmed_rate": 1.0}
    results[1]["metrics"]["verify"] |= {"copy_rate": 0.04, "reference_confirmed_rate": 1.0}
    results[0]["data"]["difficulty_mix"] = {"1 steps": 0.75, "2 steps": 0.25}
    results[1]["data"]["difficulty_mix"] = {"1 steps": 1.0}
    results[2]["metrics"] = {key: value for key, value in results[2]["metrics"].items() if key != "verify"}
    results[2]["data"]["difficulty_mix"] = {"1 steps": 0.5, "2 steps": 0.5}
    results[0]["metrics"]["policy_update"] = {"informative_group_rate": 0.2}
    results[1]["metrics"]["policy_update"] = {"informative_group_rate": 0.4}
    table = audit_markdown(results_table(results, "math")).splitlines()
    assert table[0] == ("| arm | verified rate | copy rate | kept answers the reference solver confirms | difficulty "
                        "matches the seed's | GRPO groups with two differing rewards | fine-tuning data: 1 steps | "
                        "fine-tuning data: 2 steps |")
    assert table[2] == "| original | 50.0% | 3.0% | 100.0% | — | 30.0% | 87.5% | 12.5% |"
    assert table[3] == "| random_pool | — | — | — | — | — | 50.0% | 50.0% |"


def test_a_computed_run_is_reused_until_an_input_changes(tmp_path):
    config = _config()
    for path in ("data/prepared/seed.parquet", "models/base/student/config.json", "data/seed_centroids.npz"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1")
    arm = Arm("demo", "a demo arm", {"finetune": {"epochs": 2.0}}, ("finetune",))
    calls = []

    def run_stage(stage, arm_config, layout: Layout):
        calls.append((stage, arm_config.finetune.epochs, layout.root))
        assert (layout.root / "models" / "base" / "student" / "config.json").read_text() in ("v1", "v2")
        return {"seconds": 0.0}

    first = run_arm(tmp_path, config, arm, 0, run_stage)
    again = run_arm(tmp_path, config, arm, 0, run_stage)
    assert (first["reused"], again["reused"]) == (False, True)
    assert calls == [("finetune", 2.0, run_dir(tmp_path, config, "demo", 0))]
    (tmp_path / "models/base/student/config.json").write_text("v2")
    assert run_arm(tmp_path, config, arm, 0, run_stage)["reused"] is False
    assert run_arm(tmp_path, config, arm, 1, run_stage)["reused"] is False
    assert len(calls) == 3
    saved = json.loads((run_dir(tmp_path, config, "demo", 1) / "result.json").read_text())
    assert saved["overrides"] == {"finetune": {"epochs": 2.0}}


@pytest.mark.parametrize("damage", ["truncated", "edited accuracy", "edited predictions", "no hash"])
def test_a_damaged_run_result_is_redone_with_a_warning_never_trusted(tmp_path, damage, caplog):
    config = _config()
    for path in ("data/prepared/seed.parquet", "models/base/student/config.json", "data/seed_centroids.npz"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1")
    arm = Arm("demo", "a demo arm", {}, ("evaluate",))
    calls = []

    def run_stage(stage, arm_config, layout: Layout):
        calls.append(stage)
        layout.predictions.parent.mkdir(parents=True, exist_ok=True)
        artifacts.write_table(layout.predictions, pd.DataFrame({"id": ["q1"], "correct": [True]}))
        return {"after_accuracy": 0.5}

    run_arm(tmp_path, config, arm, 0, run_stage)
    workspace = run_dir(tmp_path, config, "demo", 0)
    path = workspace / "result.json"
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "edited accuracy":
        path.write_text(text.replace('"after_accuracy": 0.5', '"after_accuracy": 0.9'))
    elif damage == "edited predictions":
        artifacts.write_table(Layout(workspace).predictions, pd.DataFrame({"id": ["q1"], "correct": [False]}))
    else:
        saved = json.loads(text)
        del saved["result_hash"]
        path.write_text(json.dumps(saved))
    with caplog.at_level("WARNING"):
        again = run_arm(tmp_path, config, arm, 0, run_stage)
    assert again["reused"] is False and calls == ["evaluate", "evaluate"]
    assert f"{path}: {'written without a content hash' if damage == 'no hash' else 'damaged'}" in caplog.text
    assert again["metrics"]["evaluate"]["after_accuracy"] == 0.5
    assert run_arm(tmp_path, config, arm, 0, run_stage)["reused"] is True  # redone, then trusted again


@pytest.mark.slow
def test_smoke_comparison_flow(tmp_path, monkeypatch):
    """The whole comparison on the smoke profile as a real Prefect flow run; a second run reuses every arm."""
    from prefect.testing.utilities import prefect_test_harness

    from acqsynth.config import write_params
    from flows.compare import compare as compare_flow

    values = profile_params("smoke")
    write_params(tmp_path / "params.yaml", values)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    with prefect_test_harness(server_startup_timeout=180):
        first = compare_flow(params_path="params.yaml", root=str(tmp_path))
        second = compare_flow(params_path="params.yaml", root=str(tmp_path))
    assert first["reused"] == 0 and second["reused"] == second["runs"] == first["runs"]
    config = resolve(values)
    out = report_dir(tmp_path, config.profile, config.domain)
    report = (out / "report.md").read_text()
    for arm in main_arms(config):
        assert f"| {arm.name} | {config.compare.seeds} |" in report
    assert "Cross-model transfer" in report and "synthetic set size" in report
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["group"]) == {"arms", "transfer", "sizes"}
    assert runs["accuracy"].between(0, 1).all()
    for plot in ("accuracy.png", "difference_from_original.png", "rewards.png", "size_curve.png"):
        assert (out / plot).stat().st_size > 0
        assert f"]({plot})" in report


def test_transfer_and_size_runs_resolve(tmp_path):
    config = _config()
    (tmp_path / "models" / "base" / "generator").mkdir(parents=True)
    runs = transfer_arms(tmp_path, config) + size_arms(config)
    for arm in runs:
        run_config(config, arm, seed=1)
    sizes = [run_config(config, arm, 0).select.budget for arm in runs if arm.name.startswith("size_")
             and arm.name != "size_pool"]
    assert sizes == list(config.compare.sizes)
    b_own = run_config(config, runs[2], 0)
    assert b_own.build_models.tiny == config.compare.transfer_student


def test_plan_shares_seeds_out(tmp_path):
    config = _config()
    (tmp_path / "models" / "base" / "generator").mkdir(parents=True)
    whole = plan(tmp_path, config)
    names = [(arm.name, seed) for arm, seed in whole]
    assert len(names) == len(set(names))
    parts = [plan(tmp_path, config, [seed]) for seed in range(config.compare.seeds)]
    shared_out = {(arm.name, seed) for part in parts for arm, seed in part}
    assert shared_out == set(names)
    assert all(("student_b", 0) in {(arm.name, seed) for arm, seed in part} for part in parts)
    assert completed_results(tmp_path, config) == []


def test_plan_without_transfer_student_or_sizes_runs_only_the_arms(tmp_path):
    config = _config(arms=["original", "acqsyn_combined"])
    config = config.model_copy(update={"compare": config.compare.model_copy(
        update={"transfer_student": None, "sizes": ()})})
    runs = plan(tmp_path, config)
    assert [(arm.name, seed) for arm, seed in runs] == [
        (name, seed) for seed in range(config.compare.seeds) for name in ("original", "acqsyn_combined")]


def test_waves_run_each_run_after_the_runs_it_links(tmp_path):
    config = _config()
    (tmp_path / "models" / "base" / "generator").mkdir(parents=True)
    whole = plan(tmp_path, config)
    groups = waves(whole)
    assert [run for wave in groups for run in wave] == sorted(whole, key=lambda run: next(
        depth for depth, wave in enumerate(groups) if run in wave))
    assert sorted((arm.name, seed) for wave in groups for arm, seed in wave) == sorted(
        (arm.name, seed) for arm, seed in whole)
    depth = {(arm.name, seed): index for index, wave in enumerate(groups) for arm, seed in wave}
    for (arm, seed) in whole:
        for run in arm.inputs:
            if run != MAIN:
                assert depth[(run, 0 if run in SEEDLESS_RUNS else seed)] < depth[(arm.name, seed)]
    assert {arm.name for arm, _ in groups[0]} == {arm.name for arm in main_arms(config)} | {"student_b"}
    assert [arm.name for arm, _ in groups[-1]] == [f"size_{size}" for size in config.compare.sizes]


def test_fingerprint_ignores_how_the_comparison_is_run(tmp_path):
    config = _config()
    arm = Arm("demo", "a demo arm", {"finetune": {"epochs": 2.0}}, ("finetune",), {})
    before = run_fingerprint(tmp_path, config, arm, 0)
    rescheduled = _config(workers=5, seeds=7, arms=["original"])
    assert run_fingerprint(tmp_path, rescheduled, arm, 0) == before
    assert run_fingerprint(tmp_path, _config(), Arm(
        "demo", "a demo arm", {"finetune": {"epochs": 3.0}}, ("finetune",), {}), 0) != before


def test_set_args_flatten_overrides_into_dvc_flags():
    flags = set_args({"select": {"source": "seed", "budget": 500}, "policy_update": {"reward": {
        "weights": {"confidence": 1.0}}, "max_steps": 0}})
    assert flags == ["-S select.source=seed", "-S select.budget=500", "-S policy_update.reward.weights.confidence=1.0",
                     "-S policy_update.max_steps=0"]


def test_summary_json_gives_paired_differences_from_each_reference():
    accuracies = {"original": [0.40, 0.50, 0.60], "rejection_sampling": [0.42, 0.50, 0.61],
                  "verify_only": [0.45, 0.50, 0.60], "acqsyn_combined": [0.50, 0.58, 0.66]}
    results = [_result(arm, s, a) for arm, values in accuracies.items() for s, a in enumerate(values)]
    table = results_table(results, "math")
    summary = json.loads(json.dumps(summary_json(table)))  # plain JSON
    combined = summary["arms"]["acqsyn_combined"]
    assert combined["n"] == 3 and combined["accuracy"]["mean"] == pytest.approx(0.58)
    diff, half = mean_ci95([0.08, 0.08, 0.05])
    assert combined["difference_from"]["rejection_sampling"] == {"mean": pytest.approx(diff, abs=1e-6),
                                                                 "ci95": pytest.approx(half, abs=1e-6), "n": 3}
    assert combined["difference_from"]["random_pool"] == {"mean": None, "ci95": None, "n": 0}  # no such arm
    assert summary["arms"]["original"]["difference_from"]["original"]["n"] == 0
    lines = control_lines(table)
    assert len(lines) == 1 and lines[0].startswith("- `acqsyn_combined`: +6.3 pts") and "better than" in lines[0]
    worse = [_result("verify_only", s, a) for s, a in enumerate([0.5, 0.6, 0.7])]
    worse += [_result("acqsyn_confidence", s, a) for s, a in enumerate([0.5, 0.58, 0.71])]
    assert "does nothing measurable" in control_lines(results_table(worse, "math"))[0]


def test_primary_comparisons_pair_arms_by_seed_and_question(tmp_path):
    from acqsynth import artifacts

    config = _config()
    rng = np.random.default_rng(3)
    truth = rng.random(300) < 0.5
    accuracies = {}
    for arm, gain in (("original", 0.0), ("verify_only", 0.0), ("acqsyn_learnability", 0.25)):
        for seed in range(3):
            correct = np.where(rng.random(300) < gain, True, truth)
            frame = pd.DataFrame({"id": [f"q{i:03d}" for i in range(300)], "domain": "math", "completion": "",
                                  "predicted": "", "expected": "", "correct": correct, "student": "after"})
            path = Layout(run_dir(tmp_path, config, arm, seed)).predictions
            path.parent.mkdir(parents=True)
            artifacts.write_table(path, frame.sample(frac=1.0, random_state=seed))  # any row order
            accuracies.setdefault(arm, []).append(float(correct.mean()))
    table = results_table([_result(arm, s, a) for arm, values in accuracies.items()
                                   for s, a in enumerate(values)], "math")
    rows = primary_comparisons(tmp_path, config, table)
    assert [(r["arm"], r["reference"]) for r in rows] == [("acqsyn_learnability", "original"),
                                                          ("acqsyn_learnability", "verify_only")]
    for row in rows:
        assert row["difference"] == pytest.approx(np.mean(accuracies["acqsyn_learnability"])
                                                  - np.mean(accuracies[row["reference"]]))
        assert row["interval"][0] > 0 and row["p_holm"] < 0.05
        assert (row["seeds"], row["questions"]) == (3, 300)
    assert sorted(row["interval_level"] for row in rows) == pytest.approx([0.95, 0.975])  # Holm: alpha/2, alpha
    assert "| acqsyn_learnability | original | +" in primary_markdown(rows)


def test_a_report_with_no_finished_run_says_so(tmp_path):
    from acqsynth.artifacts import ArtifactError
    from acqsynth.comparison.report import DESIGN, write_report

    failed = [{"arm": "original", "group": "arms", "seed": 0, "metrics": {}, "reused": False, "failed": "boom"}]
    with pytest.raises(ArtifactError, match="experiments/math: no run of the plan has finished.*nothing to report"):
        write_report(tmp_path, _config(), failed, "acqsynth compare", 1.0, DESIGN)


def test_the_forest_plot_groups_arms_by_kind_around_zero(tmp_path):
    from acqsynth.comparison.report import _arm_kind, _plot_forest

    assert [_arm_kind(arm) for arm in ("random_pool", "rejection_sampling", "verify_only", "acqsyn_learnability")] \
        == ["real data", "untrained generator", "GRPO controls", "AcquisitionSynthesis"]
    table = results_table([_result(arm, seed, accuracy + 0.01 * seed) for seed in range(3)
                           for arm, accuracy in (("original", 0.5), ("random_pool", 0.56), ("acqsyn_combined", 0.52))],
                          "math")
    _plot_forest(summary_table(table), "original", tmp_path / "forest.png")
    assert (tmp_path / "forest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finished_runs_are_recorded_as_dvc_experiments_of_the_checkout(tmp_path):
    """`dvc exp show` in the checkout lists every finished run of a comparison, with its params and headline."""
    import subprocess
    import sys

    from acqsynth.config import write_params
    from flows.compare import record_experiments

    values = profile_params("smoke")
    write_params(tmp_path / "params.yaml", values)
    for name in ("dvc.yaml", ".gitignore"):
        (tmp_path / name).write_text((REPO / name).read_text())
    env = {"DVC_NO_ANALYTICS": "1"}
    for command in (["git", "init", "-q"], [sys.executable, "-m", "dvc", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(command, cwd=tmp_path, check=True, env={**os.environ, **env})
    config = resolve(values)
    results = [_result("original", 0, 0.5), _result("acqsyn_learnability", 0, 0.7),
               {"arm": "verify_only", "group": "arms", "seed": 0, "metrics": {}, "failed": "boom"}]
    for result in results[:2]:
        workspace = run_dir(tmp_path, config, result["arm"], result["seed"])
        workspace.mkdir(parents=True)
        arm_values = {**values, "policy_update": {**values["policy_update"], "max_steps": result["seed"] + 3}}
        write_params(workspace / "params.yaml", arm_values)
    assert record_experiments(tmp_path, config, results) is None
    shown = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout
    [baseline] = json.loads(shown)[1:]
    experiments = {exp["name"]: exp["revs"][0]["data"] for exp in baseline["experiments"]}
    assert set(experiments) == {"smoke-math-original-seed0", "smoke-math-acqsyn_learnability-seed0"}
    learnability = experiments["smoke-math-acqsyn_learnability-seed0"]
    assert learnability["metrics"]["metrics/report.json"]["data"] == {
        "verified_rate": 0.5, "in_domain_before_accuracy": 0.4, "in_domain_after_accuracy": 0.7,
        "forgetting_drop_mcq": 0.1, "forgetting_drop_code": 0.0}
    assert learnability["params"]["params.yaml"]["data"]["policy_update"]["max_steps"] == 3
    assert subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout == ""  # the checkout's files and index are untouched
