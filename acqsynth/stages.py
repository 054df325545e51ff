"""The pipeline's stages, one plain function each: read the inputs from the layout, compute, write every output to a
staging path, validate it with its quality gate, and only then promote it over the previous good version.

prepare -> build_models -> seed_centroids -> policy_update -> generate -> verify -> acquisition_score -> finetune
-> evaluate -> report
Each returns the metrics it wrote (also saved as metrics/<stage>.json).
"""

from __future__ import annotations

import copy
import random
import re
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth import artifacts
from acqsynth.config import Layout, PipelineConfig, PROCEDURAL, TINY
from acqsynth.domains import math as math_domain
from acqsynth.quality import gates
from acqsynth.resume import ShardStore, checkpoint_dir, fingerprint, run_in_shards

EXAMPLE_COLUMNS = ["id", "domain", "skill", "question", "reasoning", "answer", "source"]
VERIFY_SHARD_SIZE = 256
SPLITS = ("seed", "eval", "pool", "pretrain", "forget")
STAGES = ("prepare", "build_models", "seed_centroids", "policy_update", "generate", "verify", "acquisition_score",
          "finetune", "evaluate", "report")


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
    gates.gate(frame, expectations, name=name, path=path, report_dir=layout.quality_reports)


def _write_gated_table(frame: pd.DataFrame, expectations: list, name: str, path: Path, layout: Layout) -> None:
    """Validate, then replace the artifact atomically: a failed gate leaves the previous good version in place."""
    _gate(frame, expectations, name, path, layout)
    artifacts.write_table(path, frame)


def _write_metrics(layout: Layout, stage: str, metrics: dict[str, Any], started: float) -> dict[str, Any]:
    metrics = {**metrics, "seconds": round(time.perf_counter() - started, 2)}
    artifacts.write_json(layout.metrics / f"{stage}.json", metrics)
    return metrics


def _split(layout: Layout, name: str) -> pd.DataFrame:
    return artifacts.read_table(layout.split(name), EXAMPLE_COLUMNS, exact=True)


def _load(path: Path):
    from acqsynth.models.loading import load_model

    return load_model(path)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _shard_store(final: Path, *inputs: object) -> ShardStore:
    return ShardStore(final.parent / f".{final.name}.shards", fingerprint(*inputs))


def _checkpoints(final: Path, *inputs: object) -> Path:
    """Where a trainer writing `final` keeps its checkpoints until it succeeds."""
    return checkpoint_dir(final.parent / f".{final.name}.checkpoints", fingerprint(*inputs))


# -- prepare -------------------------------------------------------------------------------------------------------

def _examples(problems: list[math_domain.MathProblem], source: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"id": p.id, "domain": "math", "skill": p.skill, "question": p.question, "reasoning": p.reasoning,
          "answer": p.answer, "source": source} for p in problems],
        columns=EXAMPLE_COLUMNS,
    )


def _unique_questions(problems: list[math_domain.MathProblem]) -> list[math_domain.MathProblem]:
    seen: set[str] = set()
    unique = []
    for problem in problems:
        if problem.question not in seen:
            seen.add(problem.question)
            unique.append(problem)
    return unique


def prepare(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """Seed, eval, pool and pretrain splits of word problems (disjoint questions), and the forgetting split: a skill
    the student learns in pre-training but never sees in the synthetic data (arithmetic drills)."""
    started = time.perf_counter()
    cfg = config.prepare
    difficulty = math_domain.MathDifficulty(**cfg.difficulty.model_dump())
    in_domain = cfg.n_seed + cfg.n_pool + cfg.n_pretrain
    if cfg.source == PROCEDURAL:
        # Over-generate, then drop repeated questions so that no eval question is in a training split.
        problems = _unique_questions(
            math_domain.generate_word_problems(2 * (in_domain + cfg.n_eval), difficulty, seed=config.seed)
        )
        eval_problems, train_problems = problems[: cfg.n_eval], problems[cfg.n_eval :]
        source = "procedural"
    else:
        eval_problems = math_domain.load_gsm8k(cfg.source, split="test", limit=cfg.n_eval)
        train_problems = math_domain.load_gsm8k(cfg.source, split="train", limit=in_domain)
        source = cfg.source
    if len(train_problems) < in_domain or len(eval_problems) < cfg.n_eval:
        raise ValueError(
            f"prepare: source {cfg.source!r} gave {len(train_problems)} training and {len(eval_problems)} eval "
            f"problems; prepare.n_seed + n_pool + n_pretrain = {in_domain} and n_eval = {cfg.n_eval} are needed"
        )
    train_problems = random.Random(config.seed).sample(train_problems, in_domain)
    drills = _unique_questions(
        math_domain.generate_arithmetic_drills(4 * cfg.n_forget, difficulty, seed=config.seed + 1)
    )
    n_drills_pretrain = len(drills) - cfg.n_forget
    splits = {
        "seed": _examples(train_problems[: cfg.n_seed], source),
        "pool": _examples(train_problems[cfg.n_seed : cfg.n_seed + cfg.n_pool], source),
        "pretrain": _examples(train_problems[cfg.n_seed + cfg.n_pool :] + drills[: n_drills_pretrain], source),
        "eval": _examples(eval_problems[: cfg.n_eval], source),
        "forget": _examples(drills[n_drills_pretrain:], "procedural"),
    }
    for name, frame in splits.items():
        _gate(frame, gates.examples_expectations(), f"prepare_{name}", layout.split(name), layout)
    with _staged(layout.prepared) as staged:
        for name, frame in splits.items():
            artifacts.write_table(staged / f"{name}.parquet", frame)
    return _write_metrics(layout, "prepare", {f"n_{name}": len(frame) for name, frame in splits.items()}, started)


# -- build_models ---------------------------------------------------------------------------------------------------

def generator_pairs(examples: pd.DataFrame, seed: int) -> list[tuple[str, str]]:
    """Pre-training pairs for the generator: a seed example in the prompt, another problem as the new sample."""
    rng = random.Random(seed)
    rows = examples.to_dict("records")
    pairs = []
    for row in rows:
        other = rows[rng.randrange(len(rows))]
        pairs.append((math_domain.generator_prompt(row["question"], row["reasoning"], row["answer"]),
                      math_domain.format_sample(other["question"], other["reasoning"], other["answer"])))
    return pairs


def student_pairs(examples: pd.DataFrame) -> list[tuple[str, str]]:
    return [(math_domain.student_prompt(q), math_domain.student_completion(r, a))
            for q, r, a in zip(examples["question"], examples["reasoning"], examples["answer"], strict=True)]


def _generator_prompts(seeds: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` generator prompts cycling over the seed examples in a shuffled order."""
    order = random.Random(seed).sample(range(len(seeds)), len(seeds))
    rows = [seeds.iloc[order[i % len(order)]] for i in range(n)]
    return pd.DataFrame({
        "prompt_id": [row["id"] for row in rows],
        "prompt": [math_domain.generator_prompt(row["question"], row["reasoning"], row["answer"]) for row in rows],
    })


def build_models(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """The base generator and student: tiny ones built and pre-trained here, or any local/hub checkpoint copied in.
    Reports the base generator's parse and verification rates and the base student's accuracy."""
    from acqsynth.evaluate import accuracy
    from acqsynth.generation.transformers_backend import generate
    from acqsynth.models import tiny
    from acqsynth.models.loading import load_model
    from acqsynth.verify.samples import check_sample

    started = time.perf_counter()
    cfg = config.build_models
    _seed_everything(config.seed)
    pretrain = _split(layout, "pretrain")
    seeds = _split(layout, "seed")
    word_problems = pretrain[pretrain["skill"] == "word_problem"]
    gen_pairs = generator_pairs(word_problems, config.seed)
    stu_pairs = student_pairs(pretrain)
    metrics: dict[str, Any] = {}
    with _staged(layout.base_models) as staged:
        tokenizer = None
        if TINY in (cfg.generator, cfg.student):
            tokenizer = tiny.train_tokenizer([p + c for p, c in gen_pairs + stu_pairs], cfg.vocab_size)
        student = None
        if cfg.student == TINY:
            student = tiny.build_llama(cfg.tiny, tokenizer, cfg.max_length, config.seed)
            losses = tiny.pretrain(student, tokenizer, stu_pairs, cfg.student_pretrain, cfg.max_length, config.seed,
                                   "pre-train student")
            tiny.save_checkpoint(student, tokenizer, staged / "student")
            metrics["student_final_pretrain_loss"] = sum(losses[-20:]) / len(losses[-20:])
        else:
            loaded = load_model(cfg.student)
            tiny.save_checkpoint(loaded.model, loaded.tokenizer, staged / "student")
        if cfg.generator == TINY:
            # Starting from the pre-trained student, the generator can already do the arithmetic it will write.
            generator_model = (copy.deepcopy(student) if student is not None
                               else tiny.build_llama(cfg.tiny, tokenizer, cfg.max_length, config.seed))
            losses = tiny.pretrain(generator_model, tokenizer, gen_pairs, cfg.generator_pretrain, cfg.max_length,
                                   config.seed, "pre-train generator")
            tiny.save_checkpoint(generator_model, tokenizer, staged / "generator")
            metrics["generator_final_pretrain_loss"] = sum(losses[-20:]) / len(losses[-20:])
        else:
            loaded = load_model(cfg.generator)
            tiny.save_checkpoint(loaded.model, loaded.tokenizer, staged / "generator")
        generator = load_model(staged / "generator")
        prompts = _generator_prompts(seeds, cfg.probe_samples, config.seed)
        texts = generate(generator.model, generator.tokenizer, list(prompts["prompt"]),
                         max_new_tokens=cfg.probe_max_new_tokens, temperature=1.0, batch_size=64,
                         description="base generator samples")
        checks = [check_sample(t.text) for t in texts]
        metrics["base_generator_parse_rate"] = sum(c.parsed for c in checks) / len(checks)
        metrics["base_generator_verified_rate"] = sum(c.verified for c in checks) / len(checks)
        eval_split = _split(layout, "eval")
        base = accuracy(load_model(staged / "student"), eval_split, cfg.probe_max_new_tokens, 64,
                        "base student accuracy")
        metrics["base_student_eval_accuracy"] = base.accuracy
        _gate(pd.DataFrame([metrics]), gates.metrics_expectations(metrics), "build_models_metrics",
              layout.metrics / "build_models.json", layout)
    return _write_metrics(layout, "build_models", metrics, started)


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

    started = time.perf_counter()
    cfg = config.acquisition_score
    seeds = _split(layout, "seed")
    embeddings = embedder(cfg.embedder, _embedding_student(config, layout)).embed(list(seeds["question"]))
    centroids = kmeans_centroids(embeddings, cfg.proximity_clusters, config.seed)
    save_centroids(layout.centroids, centroids, artifacts.content_hash(layout.split("seed")))
    metrics = {"n_seeds": len(seeds), "n_centroids": int(len(centroids)), "embedder": cfg.embedder,
               "mean_seed_proximity": float(proximity_rewards(embeddings, centroids).mean())}
    return _write_metrics(layout, "seed_centroids", metrics, started)


def _scorer(config: PipelineConfig, layout: Layout, student, seeds: pd.DataFrame):
    """An acquisition scorer with the seed centroids loaded and the diversity archive started from the seeds."""
    from acqsynth.acquisition.proximity import load_centroids
    from acqsynth.acquisition.scoring import AcquisitionScorer

    centroids = load_centroids(layout.centroids, artifacts.content_hash(layout.split("seed")))
    scorer = AcquisitionScorer(student, config.acquisition_score, centroids=centroids)
    scorer.start_archive(list(seeds["question"]))
    return scorer


# -- policy_update --------------------------------------------------------------------------------------------------

def policy_update(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from acqsynth.policy import reward_bounds, reward_curve, train_generator

    started = time.perf_counter()
    cfg = config.policy_update
    _seed_everything(config.seed)
    seeds = _split(layout, "seed")
    generator = _load(layout.base_generator)
    scorer = _scorer(config, layout, _load(layout.base_student), seeds)
    prompts = _generator_prompts(seeds, len(seeds), config.seed)
    checkpoints = _checkpoints(layout.policy, *(artifacts.content_hash(path) for path in (
        layout.base_models, layout.split("seed"), layout.centroids)), cfg.model_dump(mode="json"),
        config.acquisition_score.model_dump(mode="json"), config.seed)
    with _staged(layout.policy) as staged_model:
        rollouts, resumed_from = train_generator(generator, scorer, prompts, cfg, staged_model, checkpoints,
                                                 config.seed)
        low, high = reward_bounds(cfg.reward, config.acquisition_score)
        _write_gated_table(rollouts, gates.rollouts_expectations(low, high), "policy_update_rollouts",
                           layout.rollouts, layout)
    artifacts.discard(checkpoints)
    curve = reward_curve(rollouts)
    artifacts.atomic_write_text(layout.metrics / "policy_rewards.csv", curve.to_csv(index=False))
    first, last = curve.iloc[0], curve.iloc[-1]
    metrics = {
        "steps": int(len(curve)),
        "resumed_from_step": resumed_from,
        "rollouts": int(len(rollouts)),
        "first_step_mean_reward": float(first["mean_reward"]),
        "last_step_mean_reward": float(last["mean_reward"]),
        "parse_rate": float(rollouts["parsed"].mean()),
        "verified_rate": float(rollouts["verified"].mean()),
    }
    return _write_metrics(layout, "policy_update", metrics, started)


# -- generate -------------------------------------------------------------------------------------------------------

def generate(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """N samples from the trained generator, in shards: shard i samples with its own seed, so a resumed run writes
    exactly the rows of an uninterrupted one."""
    import torch

    from acqsynth.generation.transformers_backend import generate as generate_texts

    started = time.perf_counter()
    cfg = config.generate
    seeds = _split(layout, "seed")
    generator = _load(layout.policy)
    checkpoint = f"{layout.policy.relative_to(layout.root)}@{artifacts.content_hash(layout.policy)[:12]}"
    prompts = _generator_prompts(seeds, cfg.n_samples, config.seed)
    store = _shard_store(layout.generated, checkpoint, artifacts.content_hash(layout.split("seed")),
                         cfg.model_dump(mode="json"), config.seed)

    def generate_shard(shard: int, start: int, stop: int) -> pd.DataFrame:
        torch.manual_seed(config.seed * 1_000_003 + shard)
        chunk = prompts.iloc[start:stop]
        texts = generate_texts(generator.model, generator.tokenizer, list(chunk["prompt"]), cfg.max_new_tokens,
                               cfg.temperature, cfg.batch_size)
        rows = []
        for index, seed_id, text in zip(range(start, stop), chunk["prompt_id"], texts, strict=True):
            parsed = math_domain.parse_sample(text.text)
            rows.append({"id": f"gen-{index:06d}", "seed_id": seed_id, "generator": checkpoint,
                         "completion": text.text, "parsed": parsed.ok, "parse_error": parsed.error,
                         "question": parsed.question, "reasoning": parsed.reasoning, "answer": parsed.answer})
        return pd.DataFrame(rows)

    frame = run_in_shards(store, cfg.n_samples, cfg.batch_size, generate_shard, "generate")
    _write_gated_table(frame, gates.generated_expectations(cfg.min_parse_rate), "generate", layout.generated, layout)
    store.clear()
    return _write_metrics(layout, "generate", {"n_samples": len(frame), "parse_rate": float(frame["parsed"].mean())},
                          started)


# -- verify ---------------------------------------------------------------------------------------------------------

def verify(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """Check every generated sample; keep the verified ones, each new question once and none that is in the
    evaluation split (that would inflate the measured gain). Rejected rows go to their own table with a reason."""
    from acqsynth.verify.samples import check_sample

    started = time.perf_counter()
    generated = artifacts.read_table(layout.generated, ["id", "completion"])
    if generated.empty:
        raise artifacts.ArtifactError(f"{layout.generated}: no generated samples; expected at least one row")
    held_out = set(_split(layout, "eval")["question"])
    store = _shard_store(layout.verified, artifacts.content_hash(layout.generated))

    def check_shard(_: int, start: int, stop: int) -> pd.DataFrame:
        checks = [check_sample(text) for text in generated["completion"].iloc[start:stop]]
        return pd.DataFrame({"verified": [c.verified for c in checks], "reason": [c.reason for c in checks],
                             "question": [c.question for c in checks]})

    checks = run_in_shards(store, len(generated), VERIFY_SHARD_SIZE, check_shard, "verify")
    # Duplicates and eval-set questions depend on all rows: decided after every shard is checked.
    first_seen: dict[str, str] = {}
    verified, reasons = [], []
    for row, check in zip(generated.itertuples(), checks.itertuples(), strict=True):
        reason = check.reason
        if check.verified and check.question in held_out:
            reason = "question is in the evaluation split"
        elif check.verified and check.question in first_seen:
            reason = f"duplicate question of {first_seen[check.question]}"
        elif check.verified:
            first_seen[check.question] = row.id
        verified.append(reason == "")
        reasons.append(reason)
    checked = generated.assign(verified=verified, reason=reasons)
    kept = checked[checked["verified"]].reset_index(drop=True)
    rejected = checked[~checked["verified"]].reset_index(drop=True)
    rejected_path = layout.verified.with_name("rejected.parquet")
    _gate(checked, gates.verified_expectations(config.verify.min_verified_rate), "verify", layout.verified, layout)
    artifacts.write_table(layout.verified, kept)
    artifacts.write_table(rejected_path, rejected)
    store.clear()
    reason_kinds = Counter(re.sub(r"-?\d+", "N", reason.split(":")[0]) for reason in rejected["reason"])
    metrics = {"n_checked": len(checked), "n_verified": len(kept), "verified_rate": len(kept) / len(checked),
               "rejected_by_reason": dict(reason_kinds.most_common())}
    return _write_metrics(layout, "verify", metrics, started)


# -- acquisition_score ----------------------------------------------------------------------------------------------

def acquisition_score(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """All five acquisition rewards of every verified sample (for analysis and the selection baselines), and the
    configured combination as `acquisition_score`. Diversity is the gain against the seeds and the samples before
    it, batch by batch, in dataset order."""
    import torch

    from acqsynth.acquisition.combine import combine
    from acqsynth.acquisition.scoring import reward_ranges
    from acqsynth.config import REWARD_NAMES

    started = time.perf_counter()
    cfg = config.acquisition_score
    reward = config.policy_update.reward
    verified = artifacts.read_table(layout.verified, ["id", "question", "reasoning", "answer"])
    seeds = _split(layout, "seed")
    scorer = _scorer(config, layout, _load(layout.base_student), seeds)
    store = _shard_store(layout.scored, artifacts.content_hash(layout.verified), artifacts.content_hash(layout.split(
        "seed")), artifacts.content_hash(layout.base_student), cfg.model_dump(mode="json"), config.seed)

    def score_shard(shard: int, start: int, stop: int) -> pd.DataFrame:
        torch.manual_seed(config.seed * 1_000_003 + shard)  # answer variance samples
        chunk = verified.iloc[start:stop]
        embeddings = scorer.embed(list(chunk["question"]))
        scores = scorer.scores(list(chunk["question"]), list(chunk["reasoning"]), list(chunk["answer"]),
                               REWARD_NAMES, embeddings=embeddings)
        # The embeddings let a resumed run rebuild the diversity archive exactly as it was after this shard.
        return pd.DataFrame({**scores, "question_embedding": list(embeddings)})

    def readmit(shard: pd.DataFrame) -> None:
        scorer.archive.admit(np.stack(shard["question_embedding"].to_numpy()).astype(np.float32))

    if len(verified):
        columns = run_in_shards(store, len(verified), cfg.batch_size, score_shard, "acquisition score", readmit)
    else:
        columns = pd.DataFrame({name: [] for name in REWARD_NAMES})
    raw = {name: columns[name].to_numpy(dtype=np.float64) for name in REWARD_NAMES}
    combined = combine(raw, reward.weights, reward.normalisation) if len(verified) else np.zeros(0)
    scored = verified.assign(**raw, acquisition_score=combined)
    _write_gated_table(scored, gates.scored_expectations(reward_ranges(cfg)), "acquisition_score", layout.scored,
                       layout)
    store.clear()
    metrics = {"n_scored": len(scored),
               **{f"mean_{name}": float(raw[name].mean()) if len(scored) else None for name in REWARD_NAMES}}
    return _write_metrics(layout, "acquisition_score", metrics, started)


# -- finetune -------------------------------------------------------------------------------------------------------

def finetune(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from acqsynth.finetune import finetune_student

    started = time.perf_counter()
    _seed_everything(config.seed)
    samples = artifacts.read_table(layout.scored, ["question", "reasoning", "answer"])
    if samples.empty:
        raise ValueError(f"finetune: {layout.scored} has no verified samples: nothing the generator wrote passed "
                         "verification (see data/rejected.parquet and metrics/verify.json)")
    student = _load(layout.base_student)
    checkpoints = _checkpoints(layout.finetuned_student, artifacts.content_hash(layout.scored),
                               artifacts.content_hash(layout.base_student), config.finetune.model_dump(mode="json"),
                               config.seed)
    with _staged(layout.finetuned_student) as staged:
        log, resumed_from = finetune_student(student, samples, config.finetune, staged, checkpoints, config.seed)
    artifacts.discard(checkpoints)
    losses = pd.DataFrame([{"step": entry["step"], "loss": entry["loss"]} for entry in log])
    artifacts.atomic_write_text(layout.metrics / "finetune_loss.csv", losses.to_csv(index=False))
    metrics = {"n_samples": len(samples), "steps": int(len(losses)), "resumed_from_step": resumed_from,
               "final_loss": float(losses["loss"].iloc[-1]) if len(losses) else None}
    return _write_metrics(layout, "finetune", metrics, started)


# -- evaluate -------------------------------------------------------------------------------------------------------

def evaluate(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """Accuracy of the base and the fine-tuned student on the in-domain eval split and on the forgetting split."""
    from acqsynth.evaluate import accuracy

    started = time.perf_counter()
    cfg = config.evaluate
    splits = {name: _split(layout, name) for name in ("eval", "forget")}
    results, predictions = {}, []
    for model_name, path in (("before", layout.base_student), ("after", layout.finetuned_student)):
        student = _load(path)
        for split, examples in splits.items():
            result = accuracy(student, examples, cfg.max_new_tokens, cfg.batch_size, f"{split} {model_name}")
            results[f"{split}_{model_name}_accuracy"] = result.accuracy
            predictions.append(result.predictions.assign(split=split, student=model_name))
    metrics = {
        "in_domain": {"before_accuracy": results["eval_before_accuracy"],
                      "after_accuracy": results["eval_after_accuracy"],
                      "gain": results["eval_after_accuracy"] - results["eval_before_accuracy"],
                      "n": len(splits["eval"])},
        "forgetting": {"skill": "arithmetic", "before_accuracy": results["forget_before_accuracy"],
                       "after_accuracy": results["forget_after_accuracy"],
                       "drop": results["forget_before_accuracy"] - results["forget_after_accuracy"],
                       "n": len(splits["forget"])},
    }
    predictions_path = layout.root / "data" / "predictions.parquet"
    frame = pd.concat(predictions, ignore_index=True)
    _gate(pd.DataFrame([results]), gates.metrics_expectations(results), "evaluate", layout.metrics / "evaluate.json",
          layout)
    artifacts.write_table(predictions_path, frame)
    return _write_metrics(layout, "evaluate", metrics, started)


# -- report ---------------------------------------------------------------------------------------------------------

def report(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    from acqsynth.report import write_report

    started = time.perf_counter()
    stage_metrics = {stage: artifacts.read_json(layout.metrics / f"{stage}.json") for stage in STAGES[:-1]}
    curve = pd.read_csv(layout.metrics / "policy_rewards.csv")
    write_report(config, stage_metrics, curve, layout.report, layout.root / "reports" / "policy_rewards.png")
    summary = {
        "base_generator_parse_rate": stage_metrics["build_models"]["base_generator_parse_rate"],
        "generated_parse_rate": stage_metrics["generate"]["parse_rate"],
        "verified_rate": stage_metrics["verify"]["verified_rate"],
        "in_domain_before_accuracy": stage_metrics["evaluate"]["in_domain"]["before_accuracy"],
        "in_domain_after_accuracy": stage_metrics["evaluate"]["in_domain"]["after_accuracy"],
        "forgetting_drop": stage_metrics["evaluate"]["forgetting"]["drop"],
        "pipeline_seconds": round(sum(m["seconds"] for m in stage_metrics.values()), 1),
    }
    return _write_metrics(layout, "report", summary, started)

