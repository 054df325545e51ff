import os
import stat
from pathlib import Path

import pytest
import yaml

from acqsynth.config import ConfigError, PROFILES, load_config, profile_params, read_params, resolve, write_params


def test_every_profile_is_valid_and_round_trips(tmp_path):
    for profile in PROFILES:
        path = tmp_path / f"{profile}.yaml"
        write_params(path, profile_params(profile))
        assert load_config(path).profile == profile


def test_committed_params_yaml_is_valid():
    config = load_config(Path(__file__).resolve().parents[1] / "params.yaml")
    assert config.profile in PROFILES


def test_overrides_lay_over_the_profile():
    config = resolve({"profile": "smoke", "finetune": {"learning_rate": 1e-3}})
    assert config.finetune.learning_rate == 1e-3
    assert config.prepare.n_seed == PROFILES["smoke"]["prepare"]["n_seed"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"finetune": {"learning_rat": 1e-3}}, "finetune.learning_rat: unknown key"),
        ({"prepare": {"n_seed": -3}}, "prepare.n_seed: Input should be greater than or equal to 1"),
        ({"generate": {"n_samples": "many"}}, "generate.n_samples: Input should be a valid integer"),
        ({"policy_update": {"num_generations": 1}}, "policy_update.num_generations"),
        ({"prepare": {"sources": {"math": "./no/such/file.jsonl", "mcq": "procedural", "code": "procedural"}}},
         "prepare.sources: math: expected 'procedural', an existing local math data path"),
        ({"prepare": {"sources": {"math": "procedural"}}}, "missing ['mcq', 'code']"),
        ({"domain": "law"}, "domain: Input should be 'math', 'mcq' or 'code'"),
        ({"select": {"method": "random"}}, "select.budget"),
        ({"build_models": {"student": "/no/such/model"}}, "build_models.student: expected 'tiny'"),
        ({"profile": "huge"}, "profile: expected one of"),
        ({"prepare": {"difficulty": {"min_steps": 3, "max_steps": 2}}}, "max_steps (2) must be >= min_steps (3)"),
        ({"acquisition_score": {"confidence_clip": [0.5, 2]}}, "acquisition_score.confidence_clip"),
        ({"policy_update": {"reward": {"weights": {"novelty": 1.0}}}}, "policy_update.reward.weights.novelty"),
        ({"policy_update": {"reward": {"weights": {"confidence": 0.0}, "format_weight": 0}}},
         "a non-zero weight among"),
        # YAML's true would pass as 1; NaN and infinity are never settings.
        ({"generate": {"n_samples": True}}, "generate.n_samples: a boolean where a number is expected (got True)"),
        ({"finetune": {"learning_rate": True}}, "finetune.learning_rate: a boolean where a number is expected"),
        ({"policy_update": {"reward": {"weights": {"confidence": True}}}},
         "policy_update.reward.weights: a boolean where a number is expected"),
        ({"compare": {"sizes": [250, True]}}, "compare.sizes: a boolean where a number is expected"),
        ({"policy_update": {"reward": {"weights": {"confidence": float("nan")}}}},
         "policy_update.reward.weights.confidence: Input should be a finite number"),
        ({"finetune": {"epochs": float("inf")}}, "finetune.epochs: Input should be a finite number"),
        ({"build_models": {"student_pretrain": {"split_fraction": {"mcq": 1.5}}}},
         "build_models.student_pretrain.split_fraction: expected a share in (0, 1] for each domain; got {'mcq': 1.5}"),
        ({"build_models": {"student_pretrain": {"split_fraction": {"law": 0.5}}}},
         "build_models.student_pretrain.split_fraction.law"),
    ],
)
def test_bad_values_name_the_key(values, expected):
    with pytest.raises(ConfigError) as error:
        resolve(values, "params.yaml")
    assert expected in str(error.value)
    assert str(error.value).startswith("params.yaml")


def test_existing_local_paths_and_hub_ids_are_accepted(tmp_path):
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("")
    sources = {"math": str(data), "mcq": "openlifescienceai/medmcqa", "code": "procedural"}
    assert resolve({"prepare": {"sources": sources}}).prepare.sources == sources


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("prepare: [unclosed\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)
    path.write_text(yaml.safe_dump(["a", "list"]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_malformed_yaml_is_named_by_file_and_line_also_with_a_profile(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    path = tmp_path / "params.yaml"
    path.write_text("profile: tiny\nfinetune:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match=rf"^{path}:4:1: not valid YAML"):
        load_config(path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "--profile", "smoke"])
    assert result.exit_code == 2 and "params.yaml:4:1: not valid YAML" in result.output
    assert "Traceback" not in result.output and path.read_text().startswith("profile: tiny")  # nothing overwritten


def test_booleans_stay_booleans_where_a_flag_is_expected():
    config = resolve({"verify": {"math": {"grounding": False}}, "compare": {"transfer_student": None}})
    assert config.verify.math.grounding is False and config.compare.transfer_student is None


def test_check_paper_profile_needs_its_models_in_the_cache(tmp_path, monkeypatch):
    """`acqsynth check --profile paper` validates the profile and finds the hub models in the local cache only,
    loading and downloading nothing."""
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    missing = CliRunner().invoke(app, ["check", "--profile", "paper"])
    assert missing.exit_code == 2
    assert "build_models.generator: Qwen/Qwen2.5-3B-Instruct: not in the local Hugging Face cache" in missing.output
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2.5-3B-Instruct" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text("{}")
    weightless = CliRunner().invoke(app, ["check", "--profile", "paper"])
    assert "config.json is cached but no weights" in weightless.output
    (snapshot / "model.safetensors.index.json").write_text("{}")
    present = CliRunner().invoke(app, ["check", "--profile", "paper"])
    assert present.exit_code == 0, present.output
    assert "profile paper: valid (profile paper); models present" in present.output


def test_version_and_dvc_yaml_check_commands(tmp_path, monkeypatch):
    from importlib.metadata import version

    from typer.testing import CliRunner

    from acqsynth.dvc_yaml import render
    from flows.cli import app

    assert CliRunner().invoke(app, ["--version"]).output == f"acqsynth {version('acqsynth')}\n"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    stale = CliRunner().invoke(app, ["dvc-yaml", "--check"])
    assert stale.exit_code == 1 and "dvc.yaml: not the rendering of the stage declarations" in stale.output
    assert CliRunner().invoke(app, ["dvc-yaml"]).exit_code == 0
    assert (tmp_path / "dvc.yaml").read_text() == render()
    assert CliRunner().invoke(app, ["dvc-yaml", "--check"]).output == "dvc.yaml: up to date\n"


def test_a_profile_replaces_only_a_params_file_of_shipped_values_unless_forced(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import _select_profile, app

    monkeypatch.chdir(tmp_path)
    params = tmp_path / "params.yaml"
    write_params(params, profile_params("tiny"))
    _select_profile(params, "smoke")  # the shipped tiny values: nothing of the user's is lost
    assert read_params(params) == profile_params("smoke")
    edited = {**profile_params("smoke"), "finetune": {**profile_params("smoke")["finetune"], "learning_rate": 3e-5}}
    write_params(params, edited)
    before = params.read_bytes()
    refused = CliRunner().invoke(app, ["run", "--profile", "tiny"])
    assert refused.exit_code == 2 and "holds values of your own" in refused.output and "--force" in refused.output
    assert params.read_bytes() == before and not (tmp_path / "data").exists()
    _select_profile(params, "tiny", force=True)
    assert read_params(params) == profile_params("tiny")
    assert (tmp_path / "params.yaml.bak").read_bytes() == before
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(params.stat().st_mode) == 0o666 & ~umask  # as an editor would write it, not 0600


def test_run_refuses_a_directory_that_is_not_a_workspace(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    for command in (["run"], ["run", "--profile", "smoke"], ["compare"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "not an acqsynth workspace" in result.output, command
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_check_names_the_values_that_differ_from_the_profile(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from acqsynth.config import differences_from_profile, load_config
    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", profile_params("smoke"))
    assert differences_from_profile(load_config(tmp_path / "params.yaml")) == []
    assert "differ from profile" not in CliRunner().invoke(app, ["check"]).output
    edited = profile_params("smoke")
    edited["finetune"]["learning_rate"] = 3e-5
    edited["seed"] = 7
    write_params(tmp_path / "params.yaml", edited)
    shipped = profile_params("smoke")
    result = CliRunner().invoke(app, ["check"])
    assert result.exit_code == 0
    assert "params.yaml: 2 value(s) differ from profile smoke:" in result.output
    assert f"finetune.learning_rate: 3e-05 (profile smoke: {shipped['finetune']['learning_rate']!r})" in result.output
    assert f"seed: 7 (profile smoke: {shipped['seed']!r})" in result.output


def test_the_run_headline_says_the_result_in_one_line():
    from flows.cli import run_headline

    line = run_headline({"domain": "math", "in_domain_before_accuracy": 0.43, "in_domain_after_accuracy": 0.405,
                         "forgetting_drop_mcq": 0.06, "forgetting_drop_code": 0.005, "verified_rate": 0.4383})
    assert line == ("math: in-domain accuracy 43.0% -> 40.5% (-2.5 pts); forgetting (drop, pts): mcq +6.0, code +0.5; "
                    "verified 43.8% of the generated samples")


def test_a_section_that_sets_some_values_keeps_the_roles_defaults_for_the_rest():
    """The student's pre-training keeps its mcq share when a profile or a params file sets only its steps (the smoke
    profile lost it while the role's defaults were an instance of the generic section)."""
    models = resolve({"build_models": {"student_pretrain": {"steps": 1500}, "generator_pretrain": {"steps": 10}}}
                     ).build_models
    assert (models.student_pretrain.steps, models.student_pretrain.split_fraction) == (1500, {"mcq": 0.5})
    assert (models.generator_pretrain.steps, models.generator_pretrain.batch_size) == (10, 16)
    assert profile_params("smoke")["build_models"]["student_pretrain"]["split_fraction"] == {"mcq": 0.5}
