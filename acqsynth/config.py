"""The run's parameters: pydantic models of params.yaml, the profiles, and the fixed artifact layout.

params.yaml names a profile and may override any of its values, section by section. Every value is validated
before any work starts; an unknown key, a wrong type or an impossible value stops the run with a message that
names the key and what was expected.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from acqsynth.domains import DOMAIN_NAMES, domain_module
from acqsynth.domains.records import looks_like_hub_id
from acqsynth.verify.sandbox import MissingLayers

PROCEDURAL = "procedural"
TINY = "tiny"


class ConfigError(ValueError):
    """A bad value in params.yaml; the message names the file, the key and what was expected."""


def unknown_name(what: str, name: str, choices: list[str] | tuple[str, ...]) -> str:
    """`what: unknown 'x' (did you mean 'y'?); expected one of [...]`, for a name a user typed."""
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{what}: unknown {name!r}{hint}; expected one of {list(choices)}"


def _accepts_bool(annotation: Any) -> bool:
    return annotation is bool or annotation is Any or any(_accepts_bool(arg) for arg in get_args(annotation))


def _bools_in(value: Any, annotation: Any) -> bool:
    """Whether `value` holds a bool where `annotation` takes none (YAML's `true` would pass as 1 or 1.0)."""
    if isinstance(value, bool):
        return not _accepts_bool(annotation)
    if isinstance(value, dict):
        args = get_args(annotation)
        return bool(args) and len(args) == 2 and any(_bools_in(item, args[1]) for item in value.values())
    if isinstance(value, (list, tuple)):
        args = [arg for arg in get_args(annotation) if arg is not Ellipsis]
        return len(args) == 1 and any(_bools_in(item, args[0]) for item in value)
    return False


class _Strict(BaseModel):
    # Floats must be finite: a NaN weight or an infinite epoch count is a mistake, never a setting.
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: Any) -> Any:
        if _bools_in(value, cls.model_fields[info.field_name].annotation):
            raise ValueError("a boolean where a number is expected")
        return value


def _check_source(value: str, allowed_keyword: str, what: str) -> str:
    """A source is a keyword, an existing local path, or a hub id ("org/name")."""
    if value == allowed_keyword:
        return value
    if Path(value).expanduser().exists():
        return value
    if not looks_like_hub_id(value):
        raise ValueError(
            f"expected '{allowed_keyword}', an existing local {what} path, or a hub id like 'org/name'; "
            f"'{value}' does not exist"
        )
    return value


class MathDifficultyConfig(_Strict):
    min_steps: int = Field(1, ge=1, le=8)
    max_steps: int = Field(2, ge=1, le=8)
    min_value: int = Field(1, ge=0)
    max_value: int = Field(20, ge=1)
    operations: tuple[Literal["+", "-", "*", "/"], ...] = ("+", "-")

    @model_validator(mode="after")
    def _ordered(self) -> MathDifficultyConfig:
        if self.max_steps < self.min_steps:
            raise ValueError(f"max_steps ({self.max_steps}) must be >= min_steps ({self.min_steps})")
        if self.max_value <= self.min_value:
            raise ValueError(f"max_value ({self.max_value}) must be > min_value ({self.min_value})")
        if not self.operations:
            raise ValueError("operations must name at least one of + - * /")
        return self


DomainName = Literal[DOMAIN_NAMES]


def _require_every_domain(value: dict[str, Any], what: str) -> None:
    if missing := [name for name in DOMAIN_NAMES if name not in value]:
        raise ValueError(f"expected {what} for every domain {list(DOMAIN_NAMES)}; missing {missing}")


class PrepareConfig(_Strict):
    """Seed, evaluation, pool and pre-training splits of every domain (sizes are per domain). The student is
    pre-trained on all three domains, so the two that are not the target measure forgetting."""

    # Per domain: "procedural", a local file or directory in a real format (GSM8K/NuminaMath, MedMCQA/PubMedQA,
    # HumanEval/MBPP), or a hub id.
    sources: dict[DomainName, str] = Field(default_factory=lambda: {name: PROCEDURAL for name in DOMAIN_NAMES})
    n_seed: int = Field(200, ge=1)
    n_eval: int = Field(200, ge=1)
    n_pool: int = Field(500, ge=0)
    n_pretrain: int = Field(2000, ge=1)
    # The confirmatory split, drawn from a stream of its own (its size shifts no other split) and stratified by
    # difficulty; `evaluate.split: test` scores on it. At 2000 questions one run's accuracy has a binomial
    # standard error of about 1.1 points (against 3.5 at the eval split's 200).
    n_test: dict[DomainName, int] = Field(default_factory=lambda: {"math": 2000, "mcq": 500, "code": 500},
                                          description="per domain; 0: no test split for that domain")
    difficulty: MathDifficultyConfig = MathDifficultyConfig()

    @field_validator("n_test")
    @classmethod
    def _test_sizes(cls, value: dict[str, int]) -> dict[str, int]:
        _require_every_domain(value, "a size")
        if negative := {name: n for name, n in value.items() if n < 0}:
            raise ValueError(f"expected sizes >= 0, got {negative}")
        return value

    @field_validator("sources")
    @classmethod
    def _sources_exist(cls, value: dict[str, str]) -> dict[str, str]:
        _require_every_domain(value, "a source")
        for name, source in value.items():
            try:
                _check_source(source, PROCEDURAL, f"{name} data")
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        return value


class TinyModelConfig(_Strict):
    """The shape of the small Llama built from config when a model is "tiny"."""

    hidden_size: int = Field(96, ge=8)
    num_layers: int = Field(3, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(256, ge=8)

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})")
        return self


class PretrainConfig(_Strict):
    steps: int = Field(800, ge=1)
    batch_size: int = Field(32, ge=1)
    learning_rate: float = Field(3e-3, gt=0)
    # The share of a domain's pretrain examples (the first ones) the model is trained on; 1 for a domain not named.
    # A smaller share leaves a model knowing that domain less: headroom for a student that would master it.
    split_fraction: dict[DomainName, float] = Field(default_factory=dict)

    @field_validator("split_fraction")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        if bad := {domain: share for domain, share in value.items() if not 0 < share <= 1}:
            raise ValueError(f"expected a share in (0, 1] for each domain; got {bad}")
        return value


# Each role's pre-training defaults are its class's, so that a section that sets some values (a profile's, a
# hand-written params file's) keeps the role's defaults for the rest rather than the generic ones.
class StudentPretrainConfig(PretrainConfig):
    steps: int = Field(1200, ge=1)
    # Half of the mcq pretrain examples: on all of them the tiny student reached 74-75.5% on mcq, at the top of the
    # range that leaves it room to improve; on half, 58.5-62% (pilots, two data seeds).
    split_fraction: dict[DomainName, float] = Field(default_factory=lambda: {"mcq": 0.5})


class GeneratorPretrainConfig(PretrainConfig):
    # The generator learns to write whole samples (stated facts, options, tests) that verify: 800 steps left it at
    # 0% verified in math, 2400 at 53% (pilot, `tiny`).
    steps: int = Field(2400, ge=1)
    batch_size: int = Field(16, ge=1)


class BuildModelsConfig(_Strict):
    """Tiny models are pre-trained here: the student on answering seed-format questions, then the generator from
    the student's weights on writing new samples (so it can already do the arithmetic it writes)."""

    generator: str = TINY  # "tiny" builds one locally; otherwise a local model directory or a hub id
    student: str = TINY
    vocab_size: int = Field(1024, ge=300)
    max_length: int = Field(448, ge=64)
    tiny: TinyModelConfig = TinyModelConfig()
    student_pretrain: StudentPretrainConfig = StudentPretrainConfig()
    generator_pretrain: GeneratorPretrainConfig = GeneratorPretrainConfig()
    # A quick probe of the base models (generator parse rate, student accuracy on the eval split).
    probe_samples: int = Field(64, ge=1)
    probe_max_new_tokens: int = Field(192, ge=8)

    @field_validator("generator", "student")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        return _check_source(value, TINY, "model directory")


RewardName = Literal["confidence", "proximity", "diversity", "gradient_magnitude", "answer_variance", "learnability"]
REWARD_NAMES: tuple[str, ...] = get_args(RewardName)


class RewardConfig(_Strict):
    """The GRPO reward of a rollout, by `mode`:

    - gate (default): verification is a gate, not a bonus. An unverified rollout gets no reward (None: TRL leaves it
      out of its group's statistics and gives it zero advantage); among a group's verified rollouts the weighted
      acquisition rewards, each normalised over those rollouts only, decide. `verified_bonus` > 0 instead gives
      unverified rollouts 0 and verified ones that much more: a small, configured term for being verified.
    - bonus: acquisition rewards normalised over the batch's verified rollouts, `failed_verification` for the rest.
    - paper: the released code's reward: acquisition on every parsed rollout, normalised over them, verified or not;
      `failed_verification` for an unparsed one.
    Every scored rollout adds `format_weight` x its graded format score, and a verified one `verified_bonus`."""

    mode: Literal["gate", "bonus", "paper"] = "gate"
    # The design issue 13's protocol (reports/compare/tiny/math/protocol.md) chose on its pilots.
    weights: dict[RewardName, float] = Field(default_factory=lambda: {"learnability": 1.0})
    normalisation: Literal["none", "minmax", "zscore", "rank"] = "rank"
    format_weight: float = Field(0.1, ge=0, le=1)
    verified_bonus: float = Field(0.0, ge=0)
    failed_verification: float = 0.0

    @model_validator(mode="after")
    def _some_signal(self) -> RewardConfig:
        # No acquisition weight is a baseline (format only, verified only); with nothing else, every reward is equal.
        if not any(weight != 0 for weight in self.weights.values()) and self.format_weight == 0 and not (
                self.verified_bonus != self.failed_verification and self.mode != "paper"):
            raise ValueError(f"expected a non-zero weight among {list(REWARD_NAMES)}, a format_weight > 0 or a "
                             f"verified_bonus other than failed_verification, got weights {self.weights}, "
                             f"format_weight 0 and verified_bonus {self.verified_bonus}")
        return self


# Where a trainer's logged curves go besides metrics/ (acqsynth.trainer_curves); each but none names its package.
ReportTo = Literal["none", "tensorboard", "dvclive", "wandb"]


def _installed(report_to: ReportTo) -> ReportTo:
    import importlib.util

    if report_to != "none" and importlib.util.find_spec(report_to) is None:
        raise ValueError(f"{report_to!r} needs the {report_to} package: pip install {report_to}")
    return report_to


class PolicyUpdateConfig(_Strict):
    """GRPO on the generator (TRL GRPOTrainer)."""

    max_steps: int = Field(60, ge=0, description="0 keeps the untrained generator (the 'original' baseline)")
    prompts_per_step: int = Field(4, ge=1)
    num_generations: int = Field(8, ge=2, description="group size: with the gate, most groups should hold at "
                                 "least two verified rollouts, or they carry no signal")
    learning_rate: float = Field(5e-5, gt=0)
    beta: float = Field(0.0, ge=0)
    temperature: float = Field(1.0, gt=0)
    max_completion_length: int = Field(192, ge=8)
    checkpoint_every: int = Field(10, ge=1, description="GRPO steps between checkpoints a crashed run resumes from")
    use_vllm: bool = Field(False, description="GRPO rollouts through a vLLM engine colocated on the training GPU")
    report_to: ReportTo = Field("none", description="where GRPO's logged curves go besides metrics/: tensorboard "
                                "or dvclive under logs/policy_update/, or wandb")
    reward: RewardConfig = RewardConfig()

    _report_to_installed = field_validator("report_to")(_installed)


class GenerateConfig(_Strict):
    backend: Literal["transformers", "vllm"] = "transformers"  # vllm: the optional extra, on a CUDA GPU
    n_samples: int = Field(600, ge=1)
    batch_size: int = Field(32, ge=1)
    temperature: float = Field(1.0, gt=0)
    max_new_tokens: int = Field(192, ge=8)
    min_parse_rate: float = Field(0.5, ge=0, le=1)
    # On 2026-12-02 the tiny base generator's math samples verified at 9.7% without it, 41.6% with it (320 samples;
    # wrong annotation values were 80% of rejections). GRPO's rollouts use it too, so GRPO trains the generator
    # that generate samples. transformers only.
    calculator: bool = Field(True, description="force the values a sample states while sampling, in GRPO and "
                             "generate: math's `<<expression=` annotations (GSM8K's calculator), code's test values "
                             "of a procedural task's function (acqsynth.generation.calculator)")


class AnswerModelConfig(_Strict):
    """The method's answer-model vote (its relabelling): a model answers each verified question k times, and a
    clear majority (one answer alone has the most votes and at least `min_agreement` of the k) must agree with the
    sample's answer. Math: real formats only (procedural questions have the reference solver), a disagreement
    rejects. Medical: a majority for another option relabels or rejects (`mode`). k = 0 turns it off; its cost
    (questions, generations, seconds) is in metrics/verify.json."""

    samples: int = Field(0, ge=0)
    mode: Literal["relabel", "reject"] = "reject"
    min_agreement: float = Field(0.6, gt=0, le=1)
    temperature: float = Field(1.0, gt=0)
    model: str = Field("student", description="'student' (the base student) or a local model directory / hub id")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, value: str) -> str:
        return _check_source(value, "student", "model directory")


# The unit facts a real solution may use without stating them: 1 (one whole, one more), 2 (a pair, halves),
# 4 (quarters, weeks in a month), 7 (days in a week), 12 (months in a year, a dozen), 24 (hours in a day), 30 (days
# in a month), 52 (weeks in a year), 60 (minutes in an hour, seconds in a minute), 100 and 0.01 (percent, cents in a
# dollar), 365 (days in a year), 1000 (grams in a kilogram, metres in a kilometre).
UNIT_CONSTANTS = (1, 2, 4, 7, 12, 24, 30, 52, 60, 100, 365, 1000, 0.01)


class MathVerifyConfig(_Strict):
    """Math checks beyond the arithmetic (acqsynth.verify.math). The reference solver checks procedural data
    (`reference_solver: false` only for plumbing runs such as the smoke profile, whose barely trained generator
    writes almost nothing the solver can read); real data has `allowed_constants` and the answer model instead."""

    grounding: bool = True
    reference_solver: bool = True
    allowed_constants: tuple[int | float, ...] = UNIT_CONSTANTS


class CodeVerifyConfig(_Strict):
    max_mutants: int = Field(8, ge=0, description="simple mutants of the solution that the tests must tell apart "
                             "(at least one rejected); 0 turns the check off")


class CopiesConfig(_Strict):
    """A generated question that copies a seed, pool, pretrain or eval question is rejected: the same normalised
    text, or an embedding cosine of at least `cosine_threshold` with the same numbers (numbers decide a question's
    answer: 'Tom has 5 apples...' and 'Tom has 6 apples...' are different problems)."""

    cosine_threshold: float | None = Field(0.97, gt=0, le=1, description="null: normalised text only")


class VerifyConfig(_Strict):
    # A floor that catches a broken generator or verifier, not a target: on 2026-12-02 the tiny generator's samples
    # verified at 9% under the meaning checks (22% under arithmetic alone), mostly failing on wrong annotations.
    min_verified_rate: float = Field(0.05, ge=0, le=1)
    workers: int = Field(2, ge=1, description="sandboxed programs run at once (code domain)")
    sandbox_missing_layers: MissingLayers = Field(
        "refuse", description="where the host lacks an essential sandbox layer (seccomp; as root, the sandbox's "
        "own uid): refuse to run generated code, or warn once and run with the weaker guarantee it names")
    math: MathVerifyConfig = MathVerifyConfig()
    code: CodeVerifyConfig = CodeVerifyConfig()
    copies: CopiesConfig = CopiesConfig()
    answer_model: AnswerModelConfig = AnswerModelConfig()


class AcquisitionScoreConfig(_Strict):
    """How each acquisition reward is computed on the student; GRPO and the acquisition_score stage share it."""

    batch_size: int = Field(32, ge=1)
    max_length: int = Field(384, ge=16, description="prompt + answer tokens read by confidence and gradient")
    confidence_clip: tuple[float, float] = (1.0, 10.0)
    embedder: Literal["minilm", "student"] = "minilm"
    proximity_clusters: int = Field(8, ge=1)
    answer_variance_samples: int = Field(4, ge=2, description="k student answers (answer variance, learnability)")
    answer_variance_temperature: float = Field(1.0, gt=0)
    max_new_tokens: int = Field(96, ge=4, description="length of the student's sampled answers (answer variance)")

    @field_validator("confidence_clip")
    @classmethod
    def _clip_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (1.0 <= low < high):
            raise ValueError(f"expected [low, high] with 1 <= low < high (1 / margin is >= 1), got {list(value)}")
        return value


class SelectConfig(_Strict):
    """What the student is fine-tuned on: the verified synthetic samples (the method, or best-of-N rejection
    sampling with `top_score`), the seed set, or the real pool (random or filtered by acquisition score). `budget`
    caps the number of samples so that arms compare at the same size."""

    source: Literal["synthetic", "seed", "pool"] = "synthetic"
    method: Literal["all", "random", "top_score"] = "all"
    budget: int | None = Field(None, ge=1, description="samples kept; null keeps all")

    @model_validator(mode="after")
    def _budget_for_selection(self) -> SelectConfig:
        if self.method != "all" and self.budget is None:
            raise ValueError(f"method {self.method!r} selects `budget` samples; set select.budget")
        return self


class LoraSettings(_Strict):
    """LoRA through PEFT; the adapter is merged into the saved student."""

    rank: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class FinetuneConfig(_Strict):
    """SFT of the student on the selected data (TRL SFTTrainer); full fine-tuning, or LoRA when `lora` is set."""

    epochs: float = Field(3.0, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(256, ge=16)
    checkpoint_every: int = Field(20, ge=1, description="steps between checkpoints a crashed run resumes from")
    report_to: ReportTo = Field("none", description="where SFT's logged curves go besides metrics/: tensorboard or "
                                "dvclive under logs/finetune/, or wandb")
    lora: LoraSettings | None = None

    _report_to_installed = field_validator("report_to")(_installed)


class EvaluateConfig(_Strict):
    split: Literal["eval", "test"] = Field("eval", description="eval while designing; test (prepare.n_test) for a "
                                           "confirmatory run, scored once")
    batch_size: int = Field(64, ge=1)
    max_new_tokens: int = Field(96, ge=4)


class CompareConfig(_Strict):
    """`acqsynth compare`: every baseline and the method's arms at one synthetic-data budget, several seeds each,
    cross-model transfer and a size curve."""

    seeds: int = Field(3, ge=1)
    budget: int = Field(500, ge=1, description="samples each arm fine-tunes on (seed-only: the whole seed set)")
    # 3x: the untrained generator's samples pass verification about 40% of the time, and every synthetic arm must
    # still reach the full budget.
    oversample: float = Field(3.0, ge=1.0, description="generated samples per budgeted sample (some fail verify)")
    rejection_n: int = Field(4, ge=2, description="best-of-N: N x the generated samples, the top `budget` kept")
    sizes: tuple[int, ...] = Field((250, 500, 1000, 2000), description="the size curve's synthetic set sizes; "
                                   "empty: no size curve")
    size_seeds: int = Field(1, ge=1)
    transfer_student: TinyModelConfig | None = Field(
        TinyModelConfig(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=384),
        description="student B of the cross-model transfer arms; null: no transfer arms")
    arms: tuple[str, ...] | None = Field(None, description="run only these arms; null runs all")
    workers: int = Field(2, ge=1, description="runs at a time, each in its own process with an equal share of the "
                         "cores (on tiny models two 1-thread runs do 1.3x the work of one 2-thread run)")


class FanoutConfig(_Strict):
    """Where the shards of generate, verify and acquisition_score run: in the stage's process (workers 1), on
    Prefect's thread runner (workers > 1), or on Ray (`ray_address`: "local" starts a local instance, or
    "ray://host:port"). Results are the same either way."""

    ray_address: str | None = None
    workers: int = Field(1, ge=1)


class PipelineConfig(_Strict):
    profile: Literal["smoke", "tiny", "paper"] = "tiny"
    data_seed: int = 0  # the splits and the base models: fixed while `seed` varies over repeated runs of an arm
    seed: int = 0  # everything stochastic after the base models: GRPO, sampling, selection, fine-tuning
    domain: DomainName = "math"  # the target domain: the generator writes it and the student is fine-tuned on it
    prepare: PrepareConfig = PrepareConfig()
    build_models: BuildModelsConfig = BuildModelsConfig()
    policy_update: PolicyUpdateConfig = PolicyUpdateConfig()
    generate: GenerateConfig = GenerateConfig()
    verify: VerifyConfig = VerifyConfig()
    acquisition_score: AcquisitionScoreConfig = AcquisitionScoreConfig()
    select: SelectConfig = SelectConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    compare: CompareConfig = CompareConfig()
    fanout: FanoutConfig = FanoutConfig()

    @model_validator(mode="after")
    def _calculator_needs_transformers(self) -> PipelineConfig:
        if self.calculator and (
                self.generate.backend == "vllm" or self.policy_update.use_vllm):
            raise ValueError("generate.calculator: the calculator runs in transformers' sampling only; set it false "
                             "with generate.backend vllm or policy_update.use_vllm")
        return self

    @property
    def calculator(self) -> bool:
        """Whether the generator's sampling for the target domain uses the calculator."""
        return self.calculator_for(self.domain)

    def calculator_for(self, domain: str) -> bool:
        """Whether the generator's sampling for `domain` uses the calculator (the domain says whether it has one)."""
        return self.generate.calculator and domain_module(domain).SAMPLED_WITH_CALCULATOR


# A profile is a set of values over the defaults (which are the `tiny` profile's).
PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "smoke": {
        # Small numbers and one step, so that even a model pre-trained for seconds writes some verified samples.
        "prepare": {"n_seed": 16, "n_eval": 16, "n_pool": 16, "n_pretrain": 200,
                    "n_test": {"math": 16, "mcq": 16, "code": 16},
                    "difficulty": {"max_steps": 1, "max_value": 9}},
        "build_models": {
            "vocab_size": 600,
            "probe_samples": 8,
            "probe_max_new_tokens": 128,
            "max_length": 384,
            "tiny": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128},
            "student_pretrain": {"steps": 800, "batch_size": 16},
            "generator_pretrain": {"steps": 1000, "batch_size": 8},
        },
        # A term for being verified: at two steps of a barely trained generator most groups hold no verified
        # rollout, and the gate alone would leave the generator unchanged.
        "policy_update": {"max_steps": 2, "prompts_per_step": 2, "num_generations": 2, "max_completion_length": 128,
                          "checkpoint_every": 1, "reward": {"verified_bonus": 0.1}},
        "generate": {"n_samples": 64, "batch_size": 16, "max_new_tokens": 128, "min_parse_rate": 0.0},
        "verify": {"min_verified_rate": 0.0, "math": {"reference_solver": False}},
        "acquisition_score": {"max_new_tokens": 24, "proximity_clusters": 4},
        "finetune": {"epochs": 1.0, "batch_size": 8, "checkpoint_every": 1},
        "evaluate": {"max_new_tokens": 64},
        "compare": {"seeds": 2, "budget": 8, "oversample": 8.0, "rejection_n": 2, "sizes": [4, 8],
                    "transfer_student": {"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                         "intermediate_size": 64}},
    },
}


# Documented alternatives: Qwen/Qwen2.5-7B-Instruct, meta-llama/Llama-3.1-8B-Instruct.
_PAPER_MODEL = "Qwen/Qwen2.5-3B-Instruct"
PROFILES["paper"] = {
    # The paper's scale: hub models and data sets (download them first; `acqsynth check --profile paper`), GPUs.
    "prepare": {"sources": {"math": "openai/gsm8k", "mcq": "openlifescienceai/medmcqa",
                            "code": "google-research-datasets/mbpp"},
                # What the sources' test splits hold beyond the eval rows: GSM8K 1319, MedMCQA's labelled
                # validation 4183, MBPP 500 (all of it eval).
                "n_seed": 500, "n_eval": 500, "n_pool": 2000, "n_pretrain": 1,
                "n_test": {"math": 800, "mcq": 2000, "code": 0}},
    "build_models": {"generator": _PAPER_MODEL, "student": _PAPER_MODEL, "max_length": 2048, "probe_samples": 64,
                     "probe_max_new_tokens": 512},
    "policy_update": {"max_steps": 500, "prompts_per_step": 8, "num_generations": 4, "learning_rate": 1e-6,
                      "beta": 0.04, "max_completion_length": 512, "checkpoint_every": 50, "use_vllm": True,
                      "reward": {"weights": {"confidence": 1.0}, "normalisation": "none", "format_weight": 0.1}},
    "generate": {"backend": "vllm", "n_samples": 1500, "batch_size": 64, "max_new_tokens": 512, "calculator": False},
    # Real GSM8K: the answer model (the base student) votes on every kept sample.
    "verify": {"answer_model": {"samples": 4}},
    "acquisition_score": {"batch_size": 8, "max_length": 2048, "max_new_tokens": 512},
    "select": {"source": "synthetic", "method": "all", "budget": 1000},
    "finetune": {"epochs": 5.0, "learning_rate": 2e-5, "batch_size": 8, "max_length": 2048, "checkpoint_every": 200},
    "evaluate": {"batch_size": 32, "max_new_tokens": 512},
    "compare": {"budget": 1000, "sizes": [250, 500, 1000, 2000],
                "transfer_student": {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "intermediate_size": 1536}},
}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid on a copy of `base`, section by section (what `dvc exp run -S section.key=value` does)."""
    merged = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid parameters ({error.error_count()}):"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        if item["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (check its spelling and section)")
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"  {key}: {message} (got {item.get('input')!r})")
    return "\n".join(lines)


def resolve(values: dict[str, Any], source: str = "params.yaml") -> PipelineConfig:
    """The profile named in `values`, with `values` laid over it, validated."""
    profile = values.get("profile", "tiny")
    if profile not in PROFILES:
        raise ConfigError(f"{source}: profile: expected one of {sorted(PROFILES)}, got {profile!r}")
    try:
        return PipelineConfig.model_validate(merge(PROFILES[profile], values))
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None


def read_params(path: Path | str) -> dict[str, Any]:
    """A params file's values, unvalidated; ConfigError naming file:line:column for YAML that does not parse."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; run `acqsynth init` to write one")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(values).__name__}")
    return values


def load_config(path: Path | str = "params.yaml") -> PipelineConfig:
    return resolve(read_params(path), str(path))


def profile_params(profile: str) -> dict[str, Any]:
    """Every value of a profile, as params.yaml holds it."""
    return resolve({"profile": profile}, f"profile {profile!r}").model_dump(mode="json")


def differences_from_profile(config: PipelineConfig) -> list[str]:
    """Each value of `config` that is not its profile's, as `key.path: value (profile <name>: value)`: what a
    params file changed from the profile it names, which is otherwise a label that other values may contradict."""
    shipped = profile_params(config.profile)
    found: list[str] = []

    def walk(ours: Any, theirs: Any, key: str) -> None:
        if isinstance(ours, dict) and isinstance(theirs, dict):
            for name in sorted(set(ours) | set(theirs)):
                walk(ours.get(name), theirs.get(name), f"{key}.{name}" if key else name)
        elif ours != theirs:
            found.append(f"{key}: {ours!r} (profile {config.profile}: {theirs!r})")

    walk(config.model_dump(mode="json"), shipped, "")
    return found


def write_params(path: Path | str, values: dict[str, Any]) -> None:
    from acqsynth.artifacts import atomic_write_text  # imports pandas: kept out of validating params

    resolve(values, str(path))
    atomic_write_text(Path(path), yaml.safe_dump(values, sort_keys=False))


@dataclass(frozen=True)
class Layout:
    """Where each stage's artifacts live, relative to the project root. dvc.yaml names the same paths."""

    root: Path = Path(".")

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def base_models(self) -> Path:
        return self.root / "models" / "base"

    @property
    def base_generator(self) -> Path:
        return self.base_models / "generator"

    @property
    def base_student(self) -> Path:
        return self.base_models / "student"

    @property
    def centroids(self) -> Path:
        return self.root / "data" / "seed_centroids.npz"

    @property
    def policy(self) -> Path:
        return self.root / "models" / "generator_grpo"

    @property
    def rollouts(self) -> Path:
        return self.root / "data" / "rollouts.parquet"

    @property
    def predictions(self) -> Path:
        return self.root / "data" / "predictions.parquet"

    @property
    def generated(self) -> Path:
        return self.root / "data" / "generated.parquet"

    @property
    def verified(self) -> Path:
        return self.root / "data" / "verified.parquet"

    @property
    def rejected(self) -> Path:
        return self.root / "data" / "rejected.parquet"

    @property
    def scored(self) -> Path:
        return self.root / "data" / "scored.parquet"

    @property
    def selected(self) -> Path:
        return self.root / "data" / "selected.parquet"

    @property
    def finetuned_student(self) -> Path:
        return self.root / "models" / "student_finetuned"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    @property
    def reward_curve(self) -> Path:
        """GRPO's reward per step (acqsynth.policy.reward_curve), as CSV."""
        return self.metrics / "policy_rewards.csv"

    @property
    def loss_curve(self) -> Path:
        """SFT's loss per logged step, as CSV."""
        return self.metrics / "finetune_loss.csv"

    def stage_metrics(self, stage: str) -> Path:
        return self.metrics / f"{stage}.json"

    def trainer_curves(self, stage: str) -> Path:
        """A trainer's curves when its `report_to` is tensorboard or dvclive (not an output: optional, and
        appended to by a resumed run)."""
        return self.root / "logs" / stage

    @property
    def quality_reports(self) -> Path:
        return self.root / "reports" / "quality"

    @property
    def report(self) -> Path:
        return self.root / "reports" / "summary.md"

    @property
    def reward_plot(self) -> Path:
        return self.root / "reports" / "policy_rewards.png"

    def split(self, name: str) -> Path:
        return self.prepared / f"{name}.parquet"
