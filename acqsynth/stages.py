"""The pipeline's stages, one plain function each: read the inputs from the layout, compute, write every output to a
staging path, validate it with its quality gate, and only then promote it over the previous good version.

prepare -> build_models -> seed_centroids -> policy_update -> generate -> verify -> acquisition_score -> select
-> finetune -> evaluate -> report
Each returns its metrics; `Stage.run`, the one executor, times the stage and saves them as metrics/<stage>.json.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth import artifacts, imports
from acqsynth.config import PROCEDURAL, REWARD_NAMES, TINY, Layout, PipelineConfig
from acqsynth.domains import (
    DOMAIN_NAMES,
    domain_module,
    generator_prompt,
    generator_sample,
    parse_generated,
    student_pair,
    student_question,
)
from acqsynth.domains.sample import Example, Verdict
from acqsynth.domains.sample import unique_questions
from acqsynth.models.cards import write_model_card
from acqsynth.models.loading import save_checkpoint
from acqsynth.quality import gates
from acqsynth.quality.suites.examples import EXAMPLE_COLUMNS, examples_expectations
from acqsynth.quality.suites.generated import generated_expectations
from acqsynth.quality.suites.metrics import metrics_expectations
from acqsynth.quality.suites.rollouts import rollouts_expectations
from acqsynth.quality.suites.scored import scored_expectations
from acqsynth.quality.suites.selected import selected_expectations
from acqsynth.quality.suites.verified import kept_expectations, verified_expectations
from acqsynth.resume import ShardMapper, ShardStore, checkpoint_dir, fingerprint, run_in_shards

VERIFY_SHARD_SIZE = 256
SPLITS = ("seed", "eval", "pool", "pretrain", "test")
# The fine-tuning set: the sample, the exact prompt and completion the student is trained on, its selection score,
# then where a synthetic sample came from (null for seed and pool samples): its seed, generator and every reward.
SELECTED_COLUMNS = ["id", "source", "question", "reasoning", "answer", "prompt", "completion", "selection_score"]
# `verification`: what each synthetic sample passed (the verifiers' `Verdict.evidence`).
PROVENANCE_COLUMNS = ["seed_id", "generator", "verification", *REWARD_NAMES, "acquisition_score"]


@dataclass(frozen=True)
class Plot:
    """A CSV that a stage writes, drawn by `dvc plots show`."""

    path: Path
    title: str
    x: str
    y: tuple[str, ...]
    y_label: str


@dataclass(frozen=True)
class Stage:
    """One stage, declared beside its function: the paths it reads and writes (relative to the workspace, from
    Layout), the params.yaml keys it depends on and the plots it writes. The pipeline is the tuple PIPELINE of
    them; dvc.yaml is rendered from it (acqsynth.dvc_yaml), the Prefect tasks wrap it (tasks/stages.py), and the
    code a stage depends on comes from the import graph (`code`)."""

    function: Callable[..., dict[str, Any]]
    reads: tuple[Path, ...]
    writes: tuple[Path, ...]
    params: tuple[str, ...]
    plots: tuple[Plot, ...] = ()
    sharded: bool = False  # takes a `map_shards` to fan its shards out
    in_git: tuple[Path, ...] = ()  # outputs that DVC leaves to git (a report to read in the repository)

    @property
    def name(self) -> str:
        return self.function.__name__

    def run(self, config: PipelineConfig, layout: Layout, **extra: Any) -> dict[str, Any]:
        """Run the stage: its function (which stages, gates and promotes what it writes) and then, timed, its
        metrics (metrics/<stage>.json). Every entry point runs a stage through this, by its Prefect task."""
        started = time.perf_counter()
        metrics = self.function(config, layout, **extra)
        metrics = {**metrics, "seconds": round(time.perf_counter() - started, 2)}
        artifacts.write_json(layout.stage_metrics(self.name), metrics)
        return metrics

    @property
    def metrics(self) -> Path:
        return _AT.stage_metrics(self.name)

    @property
    def code(self) -> list[str]:
        """The project files the stage runs, relative to the checkout (acqsynth.imports)."""
        return stage_code(self.name)


def stage_code(name: str) -> list[str]:
    """The project files the stage function `name` runs, relative to the checkout (acqsynth.imports)."""
    return imports.relative(imports.function_closure(imports.module_path(__name__), name))


def code_hashes(name: str) -> dict[str, str]:
    """The content hash of each project file the stage function `name` runs: the stage's version."""
    return {path: artifacts.content_hash(imports.ROOT / path) for path in stage_code(name)}


_AT = Layout(Path())  # the workspace-relative paths of the declarations


@contextmanager
def _staged(final: Path):
    """Yield a staging path; promote it over `final` if the block succeeds, discard it otherwise."""
    staged = artifacts.staging_path(final)
    artifacts.discard(staged)
    try:
        yield staged
    except BaseException:
        artifacts.discard(staged)
        raise
    artifacts.promote(staged, final)


def _gate(frame: pd.DataFrame, expectations: list, name: str, path: Path, layout: Layout) -> None:
    gates.gate(frame, expectations, name=name, path=path, project=layout.root, report_dir=layout.quality_reports)


def _write_gated_table(frame: pd.DataFrame, expectations: list, name: str, path: Path, layout: Layout) -> None:
    """Validate, then replace the artifact atomically: a failed gate leaves the previous good version in place."""
    _gate(frame, expectations, name, path, layout)
    artifacts.write_table(path, frame)


# (path, content hash) of the splits checked in this process: a stage reads the same split several times.
_checked_splits: set[tuple[Path, str]] = set()


def _split(layout: Layout, name: str, domain: str | None = None) -> pd.DataFrame:
    """A prepared split, all domains or one, checked with the suite that gated it when prepare wrote it."""
    path = layout.split(name)
    frame = artifacts.read_table(path, EXAMPLE_COLUMNS, exact=True)
    key = (path, artifacts.content_hash(path))
    if key not in _checked_splits:
        _gate(frame, examples_expectations(), f"read_{name}", path, layout)
        _checked_splits.add(key)
    return frame if domain is None else frame[frame["domain"] == domain].reset_index(drop=True)


def _load(path: Path, training: bool = False):
    from acqsynth.models.loading import load_model

    return load_model(path, training=training)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


# Resumed work is fingerprinted by the stage's code as well as its inputs: shards or a checkpoint written by other
# code (a column fewer, a reward fixed since) are started over, never assembled with the new.

def _shard_store(stage: str, final: Path, *inputs: object) -> ShardStore:
    """The shards of stage `stage` writing `final`."""
    return ShardStore(final.parent / f".{final.name}.shards", fingerprint(code_hashes(stage), *inputs))


def _checkpoints(stage: str, final: Path, *inputs: object) -> Path:
    """Where the trainer of stage `stage` writing `final` keeps its checkpoints until it succeeds."""
    return checkpoint_dir(final.parent / f".{final.name}.checkpoints", fingerprint(code_hashes(stage), *inputs))


# -- prepare -------------------------------------------------------------------------------------------------------

def _examples(examples: list[Example], domain: str, source: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"id": f"{domain}/{e.id}", "domain": domain, "skill": e.skill, "question": e.question,
          "reasoning": e.reasoning, "answer": e.answer, "tests": e.tests, "source": source} for e in examples],
        columns=EXAMPLE_COLUMNS,
    )


def _domain_splits(config: PipelineConfig, domain: str) -> dict[str, pd.DataFrame]:
    """Seed, pool, pretrain, eval and test examples of one domain, with disjoint questions."""
    cfg = config.prepare
    module = domain_module(domain)
    source = cfg.sources[domain]
    in_domain = cfg.n_seed + cfg.n_pool + cfg.n_pretrain
    seed = config.data_seed + DOMAIN_NAMES.index(domain)
    if source == PROCEDURAL:
        extra = {"difficulty": module.MathDifficulty(**cfg.difficulty.model_dump())} if domain == "math" else {}
        examples = unique_questions(module.procedural_examples(in_domain + cfg.n_eval, seed=seed, **extra))
        eval_examples, train_examples = examples[: cfg.n_eval], examples[cfg.n_eval :]
    else:
        eval_examples = module.load_examples(source, split="test", limit=cfg.n_eval)
        held_out = {example.question for example in eval_examples}
        train_examples = [e for e in unique_questions(module.load_examples(source, split="train"))
                          if e.question not in held_out]
    if len(train_examples) < in_domain or len(eval_examples) < cfg.n_eval:
        raise ValueError(
            f"prepare: {domain} source {source!r} gave {len(train_examples)} training and {len(eval_examples)} eval "
            f"examples; prepare.n_seed + n_pool + n_pretrain = {in_domain} and n_eval = {cfg.n_eval} are needed"
        )
    train_examples = random.Random(seed).sample(train_examples, in_domain)
    label = "procedural" if source == PROCEDURAL else source
    splits = {
        "seed": _examples(train_examples[: cfg.n_seed], domain, label),
        "pool": _examples(train_examples[cfg.n_seed : cfg.n_seed + cfg.n_pool], domain, label),
        "pretrain": _examples(train_examples[cfg.n_seed + cfg.n_pool :], domain, label),
        "eval": _examples(eval_examples[: cfg.n_eval], domain, label),
    }
    taken = {question for frame in splits.values() for question in frame["question"]}
    return splits | {"test": _examples(_test_examples(config, domain, taken), domain, label)}


# The test stream's seed, apart from the other splits' (data_seed + the domain's index).
TEST_STREAM = 1_000_003


def _test_examples(config: PipelineConfig, domain: str, taken: set[str]) -> list[Example]:
    """`prepare.n_test` examples for the confirmatory split: procedural ones from a stream of their own, real ones
    from the source's test split after its eval rows; none whose question another split holds; stratified by
    difficulty (`difficulty_of`), taken in turn from each difficulty so that each is as equally represented as the
    stream allows."""
    cfg = config.prepare
    n, source = cfg.n_test[domain], cfg.sources[domain]
    if n == 0:
        return []
    module = domain_module(domain)
    if source == PROCEDURAL:
        extra = {"difficulty": module.MathDifficulty(**cfg.difficulty.model_dump())} if domain == "math" else {}
        stream = module.procedural_examples(4 * n, seed=config.data_seed + DOMAIN_NAMES.index(domain) + TEST_STREAM,
                                            **extra)
    else:
        stream = unique_questions(module.load_examples(source, split="test"))[cfg.n_eval :]
    strata: dict[str, list[Example]] = {}
    for example in stream:
        if example.question not in taken:
            strata.setdefault(difficulty_of(domain, example.question, example.reasoning, example.skill),
                              []).append(example)
    queues = [strata[kind] for kind in sorted(strata)]
    chosen: list[Example] = []
    while len(chosen) < n and any(queues):
        chosen += [queue.pop(0) for queue in queues if queue][: n - len(chosen)]
    if len(chosen) < n:
        raise ValueError(f"prepare: {domain} source {source!r} gave {len(chosen)} test examples that no other split "
                         f"holds; prepare.n_test.{domain} = {n} are needed (0 turns the test split off)")
    # Procedural ids restart in every stream; real ones are the source's own.
    return [dataclasses.replace(example, id=f"test-{i:06d}") for i, example in enumerate(chosen)] \
        if source == PROCEDURAL else chosen


def prepare(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """Seed, eval, pool, pretrain and test splits of all three domains (disjoint questions within each domain). The
    student is pre-trained on all three, so whichever domain is the target, the other two measure forgetting."""
    per_domain = {domain: _domain_splits(config, domain) for domain in DOMAIN_NAMES}
    splits = {name: pd.concat([per_domain[d][name] for d in DOMAIN_NAMES], ignore_index=True) for name in SPLITS}
    for name, frame in splits.items():
        rows = sum(config.prepare.n_test.values()) if name == "test" else None
        _gate(frame, examples_expectations(rows), f"prepare_{name}", layout.split(name), layout)
    with _staged(layout.prepared) as staged:
        for name, frame in splits.items():
            artifacts.write_table(staged / f"{name}.parquet", frame)
    metrics = {f"n_{name}": {domain: int((frame["domain"] == domain).sum()) for domain in DOMAIN_NAMES}
               for name, frame in splits.items()}
    return metrics


PREPARE = Stage(prepare, reads=(), writes=(_AT.prepared,), params=("data_seed", "prepare"))


# -- build_models ---------------------------------------------------------------------------------------------------

def difficulty_of(domain: str, question: str, reasoning: str, skill: str) -> str:
    """What a generated sample should share with its seed: the domain's difficulty, else the example's skill."""
    return domain_module(domain).difficulty(question, reasoning) or skill


def generator_pairs(examples: pd.DataFrame, seed: int) -> list[tuple[str, str]]:
    """Pre-training pairs for the generator: a seed example in the prompt, another example of the same domain and
    difficulty (`difficulty_of`) as the new sample, so that the prompt decides what kind of sample comes out."""
    rng = random.Random(seed)
    pairs = []
    for domain, group in examples.groupby("domain", sort=True):
        rows = group.to_dict("records")
        alike: dict[str, list[dict]] = {}
        for row in rows:
            alike.setdefault(difficulty_of(domain, row["question"], row["reasoning"], row["skill"]), []).append(row)
        for row in rows:
            kind = alike[difficulty_of(domain, row["question"], row["reasoning"], row["skill"])]
            others = [other for other in kind if other is not row] or kind
            other = others[rng.randrange(len(others))]
            pairs.append((generator_prompt(domain, row["question"], row["reasoning"], row["answer"]),
                          generator_sample(domain, other["question"], other["reasoning"], other["answer"])))
    return pairs


def _share_of(examples: pd.DataFrame, split_fraction: dict[str, float]) -> pd.DataFrame:
    """The first `split_fraction[domain]` of each domain's examples (at least one; all of a domain not named), in
    their order."""
    by_domain = examples.groupby("domain", sort=False)
    limit = [max(1, round(size * split_fraction.get(domain, 1.0)))
             for domain, size in zip(examples["domain"], by_domain["domain"].transform("size"), strict=True)]
    return examples[by_domain.cumcount().to_numpy() < np.array(limit)].reset_index(drop=True)


def student_pairs(examples: pd.DataFrame) -> list[tuple[str, str]]:
    return [student_pair(domain, q, r, a) for domain, q, r, a in
            zip(examples["domain"], examples["question"], examples["reasoning"], examples["answer"], strict=True)]


def _generator_prompts(seeds: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` generator prompts cycling over the seed examples (of one domain) in a shuffled order."""
    order = random.Random(seed).sample(range(len(seeds)), len(seeds))
    rows = [seeds.iloc[order[i % len(order)]] for i in range(n)]
    return pd.DataFrame({
        "prompt_id": [row["id"] for row in rows],
        "prompt": [generator_prompt(row["domain"], row["question"], row["reasoning"], row["answer"]) for row in rows],
    })


def build_models(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """The base generator and student: tiny ones built and pre-trained here on all three domains, or any local/hub
    checkpoint copied in. Reports, per domain, the base generator's parse and verification rates and the base
    student's accuracy."""
    from acqsynth.evaluate import accuracy
    from acqsynth.generation.transformers_backend import generate
    from acqsynth.models import tiny
    from acqsynth.models.loading import load_model
    from acqsynth.verify.samples import check_samples, verify_rules

    cfg = config.build_models
    _seed_everything(config.data_seed)
    pretrain = _split(layout, "pretrain")
    gen_pairs = generator_pairs(_share_of(pretrain, cfg.generator_pretrain.split_fraction), config.data_seed)
    stu_pairs = student_pairs(_share_of(pretrain, cfg.student_pretrain.split_fraction))
    metrics: dict[str, Any] = {}
    with _staged(layout.base_models) as staged:
        tokenizer = None
        if TINY in (cfg.generator, cfg.student):
            tokenizer = tiny.train_tokenizer([p + c for p, c in gen_pairs + stu_pairs], cfg.vocab_size)
        student = None
        if cfg.student == TINY:
            student = tiny.build_llama(cfg.tiny, tokenizer, cfg.max_length, config.data_seed)
            losses = tiny.pretrain(student, tokenizer, stu_pairs, cfg.student_pretrain, cfg.max_length,
                                   config.data_seed, "pre-train student")
            save_checkpoint(student, tokenizer, staged / "student")
            metrics["student_final_pretrain_loss"] = sum(losses[-20:]) / len(losses[-20:])
        else:
            loaded = load_model(cfg.student)
            save_checkpoint(loaded.model, loaded.tokenizer, staged / "student")
        if cfg.generator == TINY:
            # Starting from the pre-trained student, the generator can already do what it will write about.
            generator_model = (copy.deepcopy(student) if student is not None
                               else tiny.build_llama(cfg.tiny, tokenizer, cfg.max_length, config.data_seed))
            losses = tiny.pretrain(generator_model, tokenizer, gen_pairs, cfg.generator_pretrain, cfg.max_length,
                                   config.data_seed, "pre-train generator")
            save_checkpoint(generator_model, tokenizer, staged / "generator")
            metrics["generator_final_pretrain_loss"] = sum(losses[-20:]) / len(losses[-20:])
        else:
            loaded = load_model(cfg.generator)
            save_checkpoint(loaded.model, loaded.tokenizer, staged / "generator")
        generator = load_model(staged / "generator")
        base_student = load_model(staged / "student")
        for domain in DOMAIN_NAMES:
            prompts = _generator_prompts(_split(layout, "seed", domain), cfg.probe_samples, config.data_seed)
            # Sampled as the generate stage samples it: with the calculator where that stage would use it.
            texts = generate(generator.model, generator.tokenizer, list(prompts["prompt"]),
                             max_new_tokens=cfg.probe_max_new_tokens, temperature=1.0, batch_size=64,
                             description=f"base generator {domain} samples", calculator=config.calculator_for(domain))
            checks = check_samples([t.text for t in texts], domain, verify_rules(config, domain))
            metrics[f"{domain}_base_generator_parse_rate"] = sum(c.parsed for c in checks) / len(checks)
            metrics[f"{domain}_base_generator_verified_rate"] = sum(c.verified for c in checks) / len(checks)
            base = accuracy(base_student, _split(layout, "eval", domain), domain, cfg.probe_max_new_tokens, 64,
                            f"base student {domain} accuracy", config.verify.workers,
                            config.verify.sandbox_missing_layers)
            metrics[f"{domain}_base_student_eval_accuracy"] = base.accuracy
        _gate(pd.DataFrame([metrics]), metrics_expectations(metrics), "build_models_metrics",
              layout.stage_metrics("build_models"), layout)
        for role, source, pretrain_cfg in (("student", cfg.student, cfg.student_pretrain),
                                           ("generator", cfg.generator, cfg.generator_pretrain)):
            shares = "".join(f"; {domain}: the first {share:.0%} of its examples"
                             for domain, share in sorted(pretrain_cfg.split_fraction.items()))
            made = (f"A tiny Llama built here and pre-trained on the pretrain split of all three domains{shares} "
                    f"({'student answers' if role == 'student' else 'new samples from seed examples'})."
                    if source == TINY else f"`{source}`, copied in.")
            write_model_card(staged / role, f"acqsynth base {role}", made,
                             {"pretrain split": artifacts.content_hash(layout.split("pretrain"))}
                             if source == TINY else {"model": source}, cfg.model_dump(mode="json"),
                             {name: value for name, value in metrics.items() if name.startswith(role)
                              or f"base_{role}" in name})
    return metrics


BUILD_MODELS = Stage(build_models, reads=(_AT.prepared,), writes=(_AT.base_models,),
                     params=("data_seed", "build_models", "prepare.sources", "generate.calculator", "verify.workers",
                             "verify.math", "verify.code"))


# -- seed_centroids -------------------------------------------------------------------------------------------------

def _embedding_student(config: PipelineConfig, layout: Layout):
    """The student, when it is also the embedder; the default embedder (MiniLM) needs none."""
    return _load(layout.base_student) if config.acquisition_score.embedder == "student" else None


def seed_centroids(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """k-means centroids of the embeddings of the whole seed questions, for the proximity reward; stored with the
    seed set's content hash so that stale centroids are never used."""
    from acqsynth.acquisition.embeddings import embedder
    from acqsynth.acquisition.proximity import proximity_rewards, save_centroids
    from acqsynth.acquisition.proximity import seed_centroids as kmeans_centroids

    cfg = config.acquisition_score
    seeds = _split(layout, "seed", config.domain)
    embeddings = embedder(cfg.embedder, _embedding_student(config, layout)).embed(list(seeds["question"]))
    centroids = kmeans_centroids(embeddings, cfg.proximity_clusters, config.data_seed)
    save_centroids(layout.centroids, centroids, _seeds_fingerprint(config, layout))
    metrics = {"domain": config.domain, "n_seeds": len(seeds), "n_centroids": int(len(centroids)),
               "embedder": cfg.embedder,
               "mean_seed_proximity": float(proximity_rewards(embeddings, centroids).mean())}
    return metrics


SEED_CENTROIDS = Stage(seed_centroids, reads=(_AT.split("seed"), _AT.base_models), writes=(_AT.centroids,),
                       params=("data_seed", "domain", "acquisition_score.embedder",
                               "acquisition_score.proximity_clusters"))


def _seeds_fingerprint(config: PipelineConfig, layout: Layout) -> str:
    """Which seeds the centroids were built from: the seed split's content and the target domain."""
    return f"{artifacts.content_hash(layout.split('seed'))}:{config.domain}"


def _scorer(config: PipelineConfig, layout: Layout, student, seeds: pd.DataFrame):
    """An acquisition scorer with the seed centroids loaded and the diversity archive started from the seeds."""
    from acqsynth.acquisition.proximity import load_centroids
    from acqsynth.acquisition.scoring import AcquisitionScorer

    centroids = load_centroids(layout.centroids, _seeds_fingerprint(config, layout))
    scorer = AcquisitionScorer(student, config.acquisition_score, config.domain, centroids=centroids)
    scorer.start_archive(list(seeds["question"]))
    return scorer


# -- policy_update --------------------------------------------------------------------------------------------------

def policy_update(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from acqsynth.policy import (CURVE_COLUMNS, REFERENCE_SIZE, ROLLOUT_COLUMNS, reward_bounds, reward_curve,
                                 train_generator)
    from acqsynth.verify.samples import verify_rules

    cfg = config.policy_update
    _seed_everything(config.seed)
    seeds = _split(layout, "seed", config.domain)
    generator = _load(layout.base_generator, training=True)
    scorer = _scorer(config, layout, _load(layout.base_student), seeds)
    prompts = _generator_prompts(seeds, len(seeds), config.seed)
    reference = _split(layout, "pool", config.domain).head(REFERENCE_SIZE)  # the same for every arm and seed
    checkpoints = _checkpoints("policy_update", layout.policy, *(artifacts.content_hash(path) for path in (
        layout.base_models, layout.split("seed"), layout.split("pool"), layout.centroids)), cfg.model_dump(mode="json"),
        config.acquisition_score.model_dump(mode="json"), config.seed, config.domain, config.calculator)
    trained = cfg.max_steps > 0
    with _staged(layout.policy) as staged_model:
        if trained:
            rollouts, resumed_from = train_generator(generator, scorer, prompts, cfg, staged_model, checkpoints,
                                                     layout.trainer_curves("policy_update"),
                                                     config.seed, verify_rules(config), config.calculator, reference)
            low, high = reward_bounds(cfg.reward, config.acquisition_score)
            _write_gated_table(rollouts, rollouts_expectations(low, high), "policy_update_rollouts",
                               layout.rollouts, layout)
        else:  # the untrained generator: the "original" baseline
            shutil.copytree(layout.base_generator, staged_model)
            rollouts, resumed_from = pd.DataFrame(columns=ROLLOUT_COLUMNS), 0
            artifacts.write_table(layout.rollouts, rollouts)
        curve = reward_curve(rollouts) if trained else pd.DataFrame(columns=CURVE_COLUMNS)
        metrics = {
            "steps": int(len(curve)),
            "resumed_from_step": resumed_from,
            "rollouts": int(len(rollouts)),
            "first_step_mean_reward": float(curve["mean_reward"].iloc[0]) if trained else None,
            "last_step_mean_reward": float(curve["mean_reward"].iloc[-1]) if trained else None,
            "parse_rate": float(rollouts["parsed"].mean()) if trained else None,
            "verified_rate": float(rollouts["verified"].mean()) if trained else None,
            "informative_group_rate": float(curve["informative_group_rate"].mean()) if trained else None,
        }
        if trained:  # untrained, it is the base generator byte for byte, its card included
            write_model_card(
                staged_model, "acqsynth GRPO generator",
                f"The base generator after {cfg.max_steps} GRPO steps on {config.domain} seed prompts, rewarded by "
                f"acquisition on the base student ({cfg.reward.mode} mode, weights {dict(cfg.reward.weights)}).",
                {"base models": artifacts.content_hash(layout.base_models),
                 "seed split": artifacts.content_hash(layout.split("seed"))},
                {"domain": config.domain, "seed": config.seed, "policy_update": cfg.model_dump(mode="json")},
                {name: value for name, value in metrics.items() if value is not None})
    artifacts.discard(checkpoints)
    artifacts.atomic_write_text(layout.reward_curve, curve.to_csv(index=False))
    return metrics


POLICY_UPDATE = Stage(
    policy_update, reads=(_AT.prepared, _AT.base_models, _AT.centroids), writes=(_AT.policy, _AT.rollouts),
    params=("seed", "domain", "policy_update", "generate.calculator", "acquisition_score", "prepare.sources",
            "verify.workers", "verify.math", "verify.code"),
    plots=(Plot(_AT.reward_curve, "GRPO reward per step", "step", ("mean_reward", "verified_rate", "parse_rate"),
                "mean reward; share of rollouts"),))


# -- generate -------------------------------------------------------------------------------------------------------

def generate(config: PipelineConfig, layout: Layout, map_shards: ShardMapper | None = None) -> dict[str, Any]:
    """N samples from the trained generator, in shards: shard i samples with its own seed, so a resumed run writes
    exactly the rows of an uninterrupted one."""
    from acqsynth.generation import load_generator

    cfg = config.generate
    seeds = _split(layout, "seed", config.domain)
    generator = load_generator(cfg.backend, layout.policy, cfg.batch_size, seed=config.seed,
                               calculator=config.calculator)
    checkpoint = f"{layout.policy.relative_to(layout.root)}@{artifacts.content_hash(layout.policy)[:12]}"
    prompts = _generator_prompts(seeds, cfg.n_samples, config.seed)
    store = _shard_store("generate", layout.generated, checkpoint, artifacts.content_hash(layout.split("seed")),
                         cfg.model_dump(mode="json"), config.seed, config.domain)

    def generate_shard(shard: int, start: int, stop: int) -> pd.DataFrame:
        chunk = prompts.iloc[start:stop]
        texts = generator.generate(list(chunk["prompt"]), cfg.max_new_tokens, cfg.temperature,
                                   seed=config.seed * 1_000_003 + shard)
        rows = []
        for index, seed_id, text in zip(range(start, stop), chunk["prompt_id"], texts, strict=True):
            parsed = parse_generated(config.domain, text.text)
            rows.append({"id": f"gen-{index:06d}", "domain": config.domain, "seed_id": seed_id,
                         "generator": checkpoint,
                         "completion": text.text, "parsed": parsed.ok, "parse_error": parsed.error,
                         "question": parsed.question, "reasoning": parsed.reasoning, "answer": parsed.answer})
        return pd.DataFrame(rows)

    frame = run_in_shards(store, cfg.n_samples, cfg.batch_size, generate_shard, "generate", map_shards=map_shards)
    _write_gated_table(frame, generated_expectations(cfg.min_parse_rate), "generate", layout.generated, layout)
    store.clear()
    return {"n_samples": len(frame), "parse_rate": float(frame["parsed"].mean())}


GENERATE = Stage(generate, reads=(_AT.policy, _AT.prepared), writes=(_AT.generated,),
                 params=("seed", "domain", "generate"), sharded=True)


# -- verify ---------------------------------------------------------------------------------------------------------

def _answer_model_votes(config: PipelineConfig, layout: Layout, questions: list[str]) -> list[list[str | None]]:
    """k answers of the answer model (the base student, or `verify.answer_model.model`) to each question, as the
    domain extracts them."""
    from acqsynth.acquisition.answer_variance import sample_answers

    cfg = config.verify.answer_model
    _seed_everything(config.seed)
    model = _load(layout.base_student if cfg.model == "student" else Path(cfg.model))
    groups = sample_answers(model, [student_question(config.domain, q) for q in questions], cfg.samples,
                            cfg.temperature, config.evaluate.max_new_tokens, config.evaluate.batch_size)
    extract = domain_module(config.domain).extract_answer
    return [[extract(text) for text in group] for group in groups]


def _answer_model(config: PipelineConfig, layout: Layout,
                  kept: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """The answer model's vote on each kept question (the method's relabelling): each row's (for medical questions
    possibly relabelled) answer, "" or the reason it is rejected, and what the vote found where it passed."""
    from acqsynth.domains import mcq
    from acqsynth.verify.math import answer_model_vote
    from acqsynth.verify.mcq import self_consistency

    cfg = config.verify.answer_model
    votes = _answer_model_votes(config, layout, list(kept["question"]))
    answers, reasons, evidence = [], [], []
    for group, question, answer in zip(votes, kept["question"], kept["answer"], strict=True):
        if config.domain == "math":
            verdict = answer_model_vote(group, answer, cfg.min_agreement)
        else:
            # A vote counts for the option it names (by its text, as grading reads it); a relabelled row keeps the
            # domain's answer form, the letter with its option's text.
            letters = [vote and mcq.chosen_option(vote, question) for vote in group]
            verdict, letter = self_consistency(letters, mcq.chosen_option(answer, question) or answer, cfg.mode,
                                               cfg.min_agreement)
            answer = mcq.format_answer(letter, dict(mcq.parse_options(question)[1])[letter])
            verdict = Verdict(verdict.verified, f"answer model: {verdict.reason}" if verdict.reason else "",
                              evidence=verdict.evidence)
        answers.append(answer)
        reasons.append(verdict.reason)
        evidence.append(verdict.evidence)
    return answers, reasons, evidence


def _copy_reasons(config: PipelineConfig, layout: Layout, questions: list[str | None]) -> list[str]:
    """"" or which seed, pool, pretrain or eval question of the target domain each generated question copies."""
    from acqsynth.verify.copies import Reference, copy_reasons

    references = [Reference(split, row.id, row.question) for split in SPLITS
                  for row in _split(layout, split, config.domain).itertuples()]
    threshold = config.verify.copies.cosine_threshold
    embed = None
    if threshold is not None:
        from acqsynth.acquisition.embeddings import embedder

        model = embedder(config.acquisition_score.embedder, _embedding_student(config, layout))
        embed = model.embed
    return copy_reasons(questions, references, embed, threshold)


def _audit(config: PipelineConfig, layout: Layout, checked: pd.DataFrame) -> dict[str, Any]:
    """What the kept data is: its difficulty mix, how often a sample's difficulty matches its seed's, and for
    procedural math the share of kept answers the reference solver confirms (the gate requires all)."""
    from acqsynth.domains.math.answers import answers_match
    from acqsynth.domains.math.problems import solve_word_problem

    kept = checked[checked["verified"]]
    seeds = _split(layout, "seed", config.domain).set_index("id")
    mix = Counter(difficulty_of(config.domain, q, r, "unknown") for q, r in zip(kept["question"], kept["reasoning"]))
    seed_kind = {seed.Index: difficulty_of(config.domain, seed.question, seed.reasoning, seed.skill)
                 for seed in seeds.itertuples()}
    matches = [difficulty_of(config.domain, row.question, row.reasoning, "unknown") == seed_kind[row.seed_id]
               for row in kept.itertuples() if row.seed_id in seed_kind]
    audit: dict[str, Any] = {
        "difficulty_mix": {kind: count / len(kept) for kind, count in sorted(mix.items())} if len(kept) else {},
        "difficulty_matches_seed_rate": sum(matches) / len(matches) if matches else None,
    }
    if config.domain == "math" and config.prepare.sources["math"] == PROCEDURAL:
        def confirmed(question: str, answer: str) -> bool:
            try:
                return answers_match(str(solve_word_problem(question).answer), answer)
            except ValueError:
                return False

        agree = [confirmed(q, a) for q, a in zip(kept["question"], kept["answer"])]
        audit["reference_confirmed_rate"] = sum(agree) / len(agree) if agree else None
    return audit


def verify(config: PipelineConfig, layout: Layout, map_shards: ShardMapper | None = None) -> dict[str, Any]:
    """Check every generated sample with its domain's verifier; keep the verified ones, each new question once and
    none that copies a seed, pool, pretrain or eval question (an eval copy would also inflate the measured gain).
    Kept samples may then face the answer model's vote. Rejected rows go to their own table with a reason that
    names the failed check ("<check>: <detail>"); metrics/verify.json counts them and audits the kept data."""
    from acqsynth.verify.copies import normalise_question
    from acqsynth.verify.samples import check_samples, verify_rules

    cfg = config.verify
    generated = artifacts.read_table(layout.generated, ["id", "domain", "seed_id", "completion"])
    if generated.empty:
        raise artifacts.ArtifactError(f"{layout.generated}: no generated samples; expected at least one row")
    _gate(generated, generated_expectations(config.generate.min_parse_rate), "verify_reads_generated",
          layout.generated, layout)
    domains = set(generated["domain"])
    if domains != {config.domain}:
        raise artifacts.ArtifactError(f"{layout.generated}: domain: expected only {config.domain!r} (params.yaml "
                                      f"domain), got {sorted(domains)}; rerun generate")
    rules = verify_rules(config)
    store = _shard_store("verify", layout.verified, artifacts.content_hash(layout.generated),
                         config.verify.model_dump(mode="json"), config.prepare.sources[config.domain])

    def check_shard(_: int, start: int, stop: int) -> pd.DataFrame:
        checks = check_samples(list(generated["completion"].iloc[start:stop]), config.domain, rules)
        return pd.DataFrame({"verified": [c.verified for c in checks], "reason": [c.reason for c in checks],
                             "question": [c.question for c in checks], "answer": [c.answer for c in checks],
                             "evidence": [c.evidence for c in checks]})

    checks = run_in_shards(store, len(generated), VERIFY_SHARD_SIZE, check_shard, "verify", map_shards=map_shards)
    # Copies and duplicates depend on all rows: decided after every shard is checked.
    copies = _copy_reasons(config, layout, [q if isinstance(q, str) else None for q in checks["question"]])
    first_seen: dict[str, str] = {}
    reasons = []
    for row, check, copied in zip(generated.itertuples(), checks.itertuples(), copies, strict=True):
        reason = check.reason
        normalised = normalise_question(check.question) if isinstance(check.question, str) else None
        if check.verified and copied:
            reason = copied
        elif check.verified and normalised in first_seen:
            reason = f"duplicate: the same question as {first_seen[normalised]}"
        elif check.verified:
            first_seen[normalised] = row.id
        reasons.append(reason)
    # A sample is kept as it was checked: in its domain's form (`parse_generated`), and a verified answer in its
    # canonical form (an mcq letter that its option text decides).
    checked = generated.assign(verified=[reason == "" for reason in reasons], reason=reasons,
                               question=checks["question"].to_numpy(),
                               answer=checks["answer"].where(checks["verified"], generated["answer"]).to_numpy(),
                               verification=[evidence if reason == "" else ""
                                             for evidence, reason in zip(checks["evidence"], reasons, strict=True)])
    answer_model: dict[str, Any] | None = None
    vote_here = cfg.answer_model.samples > 0 and (
        config.domain == "mcq" or (config.domain == "math" and config.prepare.sources["math"] != PROCEDURAL))
    if vote_here and checked["verified"].any():
        vote_started = time.perf_counter()
        kept_rows = checked.index[checked["verified"]]
        answers, vote_reasons, vote_evidence = _answer_model(config, layout, checked.loc[kept_rows])
        checked.loc[kept_rows, "answer"] = answers
        checked.loc[kept_rows, "reason"] = vote_reasons
        checked.loc[kept_rows, "verified"] = [reason == "" for reason in vote_reasons]
        checked.loc[kept_rows, "verification"] = [f"{before}; {vote}" if vote else ""
                                                  for before, vote in zip(checked.loc[kept_rows, "verification"],
                                                                          vote_evidence, strict=True)]
        answer_model = {"model": cfg.answer_model.model, "questions": len(kept_rows),
                        "generations": len(kept_rows) * cfg.answer_model.samples,
                        "seconds": round(time.perf_counter() - vote_started, 2)}
    kept = checked[checked["verified"]].reset_index(drop=True)
    rejected = checked[~checked["verified"]].reset_index(drop=True)
    _gate(checked, verified_expectations(cfg.min_verified_rate), "verify", layout.verified, layout)
    artifacts.write_table(layout.verified, kept)
    artifacts.write_table(layout.rejected, rejected)
    store.clear()
    reason_kinds = Counter(re.sub(r"-?\d+(?:\.\d+)?", "N", reason.split(" (")[0]) for reason in rejected["reason"])
    by_check = Counter(reason.split(":")[0] for reason in rejected["reason"])
    parsed = [isinstance(q, str) for q in checks["question"]]
    n_copies = sum(bool(copied) for copied in copies)
    metrics = {"domain": config.domain, "n_checked": len(checked), "n_verified": len(kept),
               "verified_rate": len(kept) / len(checked), "copy_rate": n_copies / max(1, sum(parsed)),
               "copies_by_split": dict(Counter(copied.split(" question ")[0].rsplit(" ", 1)[-1]
                                               for copied in copies if copied)),
               "rejected_by_check": dict(by_check.most_common()),
               "rejected_by_reason": dict(reason_kinds.most_common(30)),
               "answer_model": answer_model, **_audit(config, layout, checked)}
    return metrics


VERIFY = Stage(verify, reads=(_AT.generated, _AT.prepared, _AT.base_models), writes=(_AT.verified, _AT.rejected),
               params=("seed", "domain", "verify", "evaluate", "prepare.sources", "acquisition_score.embedder"),
               sharded=True)


# -- acquisition_score ----------------------------------------------------------------------------------------------

def acquisition_score(config: PipelineConfig, layout: Layout, map_shards: ShardMapper | None = None) -> dict[str, Any]:
    """All five acquisition rewards of every verified sample (for analysis and the selection baselines), and the
    configured combination as `acquisition_score`. Diversity is the gain against the seeds and the samples before
    it, batch by batch, in dataset order."""
    import torch

    from acqsynth.acquisition.combine import combine
    from acqsynth.acquisition.scoring import reward_ranges
    from acqsynth.config import REWARD_NAMES

    cfg = config.acquisition_score
    reward = config.policy_update.reward
    verified = artifacts.read_table(layout.verified, ["id", "question", "reasoning", "answer"])
    _gate(verified, kept_expectations(), "acquisition_score_reads_verified", layout.verified, layout)
    seeds = _split(layout, "seed", config.domain)
    scorer = _scorer(config, layout, _load(layout.base_student), seeds)
    store = _shard_store("acquisition_score", layout.scored, artifacts.content_hash(layout.verified),
                         _seeds_fingerprint(config, layout), artifacts.content_hash(layout.base_student),
                         cfg.model_dump(mode="json"), config.seed)

    per_sample = [name for name in REWARD_NAMES if name != "diversity"]

    def score_shard(shard: int, start: int, stop: int) -> pd.DataFrame:
        # A pure function of its shard (so it may be fanned out): diversity, which depends on every sample before
        # it, is computed afterwards from the stored embeddings.
        torch.manual_seed(config.seed * 1_000_003 + shard)  # answer variance samples
        chunk = verified.iloc[start:stop]
        embeddings = scorer.embed(list(chunk["question"]))
        scores = scorer.scores(list(chunk["question"]), list(chunk["reasoning"]), list(chunk["answer"]),
                               per_sample, embeddings=embeddings)
        return pd.DataFrame({**scores, "question_embedding": list(embeddings)})

    if len(verified):
        columns = run_in_shards(store, len(verified), cfg.batch_size, score_shard, "acquisition score",
                                map_shards=map_shards)
        embeddings = np.stack(columns["question_embedding"].to_numpy()).astype(np.float32)
        gains = []
        for start in range(0, len(embeddings), cfg.batch_size):  # batch by batch, in dataset order
            batch = embeddings[start : start + cfg.batch_size]
            gains.append(scorer.archive.gains(batch))
            scorer.archive.admit(batch)
        columns["diversity"] = np.concatenate(gains)
    else:
        columns = pd.DataFrame({name: [] for name in REWARD_NAMES})
    raw = {name: columns[name].to_numpy(dtype=np.float64) for name in REWARD_NAMES}
    combined = combine(raw, reward.weights, reward.normalisation) if len(verified) else np.zeros(0)
    scored = verified.assign(**raw, acquisition_score=combined)
    _write_gated_table(scored, scored_expectations(reward_ranges(cfg)), "acquisition_score", layout.scored,
                       layout)
    store.clear()
    metrics = {"n_scored": len(scored),
               **{f"mean_{name}": float(raw[name].mean()) if len(scored) else None for name in REWARD_NAMES}}
    return metrics


ACQUISITION_SCORE = Stage(acquisition_score, reads=(_AT.verified, _AT.base_models, _AT.prepared, _AT.centroids),
                          writes=(_AT.scored,), params=("seed", "domain", "acquisition_score", "policy_update.reward"),
                          sharded=True)


# -- select -------------------------------------------------------------------------------------------------------

def _pool_scores(config: PipelineConfig, layout: Layout, pool: pd.DataFrame) -> np.ndarray:
    """The configured combination of acquisition rewards over a real pool (the filtered-selection baseline)."""
    from acqsynth.acquisition.combine import combine

    reward = config.policy_update.reward
    names = [name for name, weight in reward.weights.items() if weight]
    scorer = _scorer(config, layout, _load(layout.base_student), _split(layout, "seed", config.domain))
    _seed_everything(config.seed)
    size = config.acquisition_score.batch_size
    raw: dict[str, list[float]] = {name: [] for name in names}
    for start in range(0, len(pool), size):
        chunk = pool.iloc[start : start + size]
        scores = scorer.scores(list(chunk["question"]), list(chunk["reasoning"]), list(chunk["answer"]), names)
        for name in names:
            raw[name].extend(scores[name].tolist())
    return combine({name: np.asarray(values) for name, values in raw.items()}, reward.weights, reward.normalisation)


def select(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """The fine-tuning set: verified synthetic samples (all, or the top `budget` by acquisition score: best-of-N
    rejection sampling), the seed set, or the real pool (a random or an acquisition-filtered `budget`)."""
    cfg = config.select
    if cfg.source == "synthetic":
        from acqsynth.acquisition.scoring import reward_ranges

        # Checked again as it is read: a table changed since its gate must not reach the training set.
        frame = artifacts.read_table(layout.scored, ["id", "question", "reasoning", "answer", "acquisition_score"])
        _gate(frame, scored_expectations(reward_ranges(config.acquisition_score)), "select_reads_scored",
              layout.scored, layout)
        scores = frame["acquisition_score"].to_numpy(dtype=np.float64)
    else:
        frame = _split(layout, cfg.source, config.domain)
        scores = (_pool_scores(config, layout, frame) if cfg.method == "top_score"
                  else np.full(len(frame), np.nan))
    if frame.empty:
        raise ValueError(f"select: no {cfg.source} samples to choose from: nothing the generator wrote passed "
                         "verification (see data/rejected.parquet and metrics/verify.json)")
    frame = frame.assign(source=cfg.source, selection_score=scores)
    budget = min(cfg.budget or len(frame), len(frame))
    if cfg.method == "random":
        chosen = frame.sample(n=budget, random_state=config.seed)
    elif cfg.method == "top_score":
        chosen = frame.iloc[np.argsort(-scores, kind="stable")[:budget]]
    else:
        chosen = frame.iloc[:budget]
    pairs = [student_pair(config.domain, question, reasoning, answer) for question, reasoning, answer
             in zip(chosen["question"], chosen["reasoning"], chosen["answer"], strict=True)]
    chosen = chosen.assign(
        prompt=[prompt for prompt, _ in pairs], completion=[completion for _, completion in pairs],
        **{column: None if column in ("seed_id", "generator", "verification") else np.nan
           for column in PROVENANCE_COLUMNS if column not in chosen})
    chosen = chosen[SELECTED_COLUMNS + PROVENANCE_COLUMNS].reset_index(drop=True)
    _write_gated_table(chosen, selected_expectations(REWARD_NAMES), "select", layout.selected, layout)
    metrics = {"source": cfg.source, "method": cfg.method, "n_available": len(frame), "n_selected": len(chosen),
               "mean_selection_score": float(np.nanmean(scores)) if np.isfinite(scores).any() else None}
    return metrics


SELECT = Stage(select, reads=(_AT.scored, _AT.prepared, _AT.base_models, _AT.centroids), writes=(_AT.selected,),
               params=("seed", "domain", "select", "acquisition_score", "policy_update.reward"))


# -- finetune -------------------------------------------------------------------------------------------------------

def finetune(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from acqsynth.finetune import finetune_student

    _seed_everything(config.seed)
    samples = artifacts.read_table(layout.selected, ["prompt", "completion"])
    if samples.empty:
        raise ValueError(f"finetune: {layout.selected} has no samples: nothing the generator wrote passed "
                         "verification (see data/rejected.parquet and metrics/verify.json)")
    _gate(samples, selected_expectations(REWARD_NAMES), "finetune_reads_selected", layout.selected, layout)
    student = _load(layout.base_student, training=True)
    checkpoints = _checkpoints("finetune", layout.finetuned_student, artifacts.content_hash(layout.selected),
                               artifacts.content_hash(layout.base_student), config.finetune.model_dump(mode="json"),
                               config.seed)
    with _staged(layout.finetuned_student) as staged:
        log, resumed_from = finetune_student(student, samples, config.finetune, staged, checkpoints,
                                                layout.trainer_curves("finetune"), config.seed)
        losses = pd.DataFrame([{"step": entry["step"], "loss": entry["loss"]} for entry in log])
        metrics = {"n_samples": len(samples), "steps": int(len(losses)), "resumed_from_step": resumed_from,
                   "final_loss": float(losses["loss"].iloc[-1]) if len(losses) else None}
        write_model_card(staged, "acqsynth fine-tuned student",
                         f"The base student after SFT on data/selected.parquet ({len(samples)} samples, "
                         f"{config.select.source} data, {config.select.method} selection; the report gives its "
                         "accuracy before and after).",
                         {"base student": artifacts.content_hash(layout.base_student),
                          "training set (data/selected.parquet)": artifacts.content_hash(layout.selected)},
                         {"seed": config.seed, "finetune": config.finetune.model_dump(mode="json")},
                         {name: value for name, value in metrics.items() if value is not None})
    artifacts.discard(checkpoints)
    artifacts.atomic_write_text(layout.loss_curve, losses.to_csv(index=False))
    return metrics


FINETUNE = Stage(finetune, reads=(_AT.selected, _AT.base_models), writes=(_AT.finetuned_student,),
                 params=("seed", "finetune"),
                 plots=(Plot(_AT.loss_curve, "SFT loss per step", "step", ("loss",), "loss"),))


# -- evaluate -------------------------------------------------------------------------------------------------------

def _base_evaluation(cache: Path, key: str, splits: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """The cached predictions of the base student for `key`, or None. A cache file is named by its key and the
    start of its content hash (one atomic file: runs of a comparison read and write it at once), and is used only if
    its content has that hash and it holds one `before` prediction with a boolean `correct` per question of the
    split; one that fails is removed with a warning and recomputed, never trusted."""
    expected = {(domain, question_id) for domain, frame in splits.items() for question_id in frame["id"]}
    for path in sorted(cache.glob(f"{key}.*.parquet")):
        try:
            if not artifacts.content_hash_of_bytes(path.read_bytes()).startswith(path.suffixes[-2][1:]):
                raise artifacts.ArtifactError(f"{path}: its content does not have the hash its name records")
            cached = artifacts.read_table(path, ["id", "domain", "correct", "student"])
            if set(zip(cached["domain"], cached["id"])) != expected or len(cached) != len(expected) \
                    or set(cached["student"]) != {"before"} or cached["correct"].dtype != bool:
                raise artifacts.ArtifactError(f"{path}: expected one 'before' prediction with a boolean 'correct' "
                                              "for each question of the split")
            return cached
        except (artifacts.ArtifactError, OSError) as error:
            logging.getLogger(__name__).warning("discarding the base student's cached evaluation: %s", error)
            path.unlink(missing_ok=True)
    return None


def _cache_base_evaluation(cache: Path, key: str, frame: pd.DataFrame) -> None:
    data = frame.to_parquet(index=False)
    artifacts.atomic_write_bytes(cache / f"{key}.{artifacts.content_hash_of_bytes(data)[:16]}.parquet", data)


def evaluate(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """Accuracy of the base and the fine-tuned student on every domain's `evaluate.split` (eval while designing,
    test for a confirmatory run): the target domain gives the in-domain gain, overall and per difficulty, the other
    two the forgetting."""
    from acqsynth.evaluate import accuracy

    cfg = config.evaluate
    splits = {domain: _split(layout, cfg.split, domain) for domain in DOMAIN_NAMES}
    if empty := [domain for domain, frame in splits.items() if frame.empty]:
        raise artifacts.ArtifactError(f"{layout.split(cfg.split)}: no {cfg.split} examples of {empty}; expected some "
                                      f"of every domain (prepare.n_{cfg.split})")
    results, predictions = {}, []
    # The base student's predictions depend only on it, the split and these settings: computed once and kept
    # beside the base models, so that the many runs of a comparison sharing one base student reuse them.
    key = fingerprint(artifacts.content_hash(layout.base_student), artifacts.content_hash(layout.split(cfg.split)),
                      cfg.model_dump(mode="json"))
    base_cache = layout.base_student.resolve().parent.parent / ".base_evaluation"
    for model_name, path in (("before", layout.base_student), ("after", layout.finetuned_student)):
        if model_name == "before" and (cached := _base_evaluation(base_cache, key, splits)) is not None:
            for domain in DOMAIN_NAMES:
                results[f"{domain}_before_accuracy"] = float(cached[cached["domain"] == domain]["correct"].mean())
            predictions.append(cached)
            continue
        student = _load(path)
        for domain, examples in splits.items():
            result = accuracy(student, examples, domain, cfg.max_new_tokens, cfg.batch_size,
                              f"{domain} {model_name}", config.verify.workers, config.verify.sandbox_missing_layers)
            results[f"{domain}_{model_name}_accuracy"] = result.accuracy
            predictions.append(result.predictions.assign(student=model_name))
        if model_name == "before":
            _cache_base_evaluation(base_cache, key, pd.concat(predictions, ignore_index=True))

    def summary(domain: str) -> dict[str, Any]:
        before, after = results[f"{domain}_before_accuracy"], results[f"{domain}_after_accuracy"]
        return {"before_accuracy": before, "after_accuracy": after, "n": len(splits[domain])} | (
            {"gain": after - before} if domain == config.domain else {"drop": before - after})

    frame = pd.concat(predictions, ignore_index=True)
    target = splits[config.domain]
    kinds = dict(zip(target["id"], (difficulty_of(config.domain, q, r, skill) for q, r, skill in
                                    zip(target["question"], target["reasoning"], target["skill"]))))
    in_domain = frame[frame["domain"] == config.domain].assign(difficulty=lambda f: f["id"].map(kinds))
    by_difficulty = {kind: {"before_accuracy": float(group[group["student"] == "before"]["correct"].mean()),
                            "after_accuracy": float(group[group["student"] == "after"]["correct"].mean()),
                            "n": int((group["student"] == "after").sum())}
                     for kind, group in sorted(in_domain.groupby("difficulty"))}
    metrics = {
        "domain": config.domain,
        "split": cfg.split,
        "in_domain": summary(config.domain) | {"by_difficulty": by_difficulty},
        "forgetting": {domain: summary(domain) for domain in DOMAIN_NAMES if domain != config.domain},
    }
    predictions_path = layout.predictions
    _gate(pd.DataFrame([results]), metrics_expectations(results), "evaluate", layout.stage_metrics("evaluate"),
          layout)
    artifacts.write_table(predictions_path, frame)
    return metrics


EVALUATE = Stage(evaluate, reads=(_AT.base_models, _AT.finetuned_student, _AT.prepared), writes=(_AT.predictions,),
                 params=("domain", "evaluate"))


# -- report ---------------------------------------------------------------------------------------------------------

def report(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from acqsynth.report import write_report

    stage_metrics = {stage.name: artifacts.read_json(layout.stage_metrics(stage.name)) for stage in PIPELINE[:-1]}
    curve = pd.read_csv(layout.reward_curve)
    write_report(config, stage_metrics, curve, layout.report, layout.reward_plot)
    return {"domain": config.domain,
            "base_generator_parse_rate": stage_metrics["build_models"][f"{config.domain}_base_generator_parse_rate"],
            **run_headline(stage_metrics),
            "pipeline_seconds": round(sum(m["seconds"] for m in stage_metrics.values()), 1)}


def run_headline(stage_metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a run did, from its stages' metrics: the figures `dvc exp show` lists for it (the report's headline,
    and a comparison run's). A run without generate or verify (real pool data) has no rates."""
    generation, verification = stage_metrics.get("generate", {}), stage_metrics.get("verify", {})
    evaluation = stage_metrics["evaluate"]
    return {**({"generated_parse_rate": generation["parse_rate"]} if "parse_rate" in generation else {}),
            **{key: verification[key] for key in ("verified_rate", "copy_rate") if key in verification},
            "in_domain_before_accuracy": evaluation["in_domain"]["before_accuracy"],
            "in_domain_after_accuracy": evaluation["in_domain"]["after_accuracy"],
            **{f"forgetting_drop_{domain}": values["drop"] for domain, values in evaluation["forgetting"].items()}}


_BEFORE_REPORT = (PREPARE, BUILD_MODELS, SEED_CENTROIDS, POLICY_UPDATE, GENERATE, VERIFY, ACQUISITION_SCORE, SELECT,
                  FINETUNE, EVALUATE)
REPORT = Stage(report, reads=(*(stage.metrics for stage in _BEFORE_REPORT), _AT.reward_curve),
               writes=(_AT.report, _AT.reward_plot), params=("profile", "domain"), in_git=(_AT.report,))
PIPELINE = (*_BEFORE_REPORT, REPORT)
