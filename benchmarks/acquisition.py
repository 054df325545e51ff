"""Cost of the acquisition rewards on the tiny student; prints JSON.

    .venv/bin/python benchmarks/acquisition.py [--student models/base/student] [--repeats 3]

- samples/s of each reward at batch sizes 1, 16 and 64;
- vectorised vs naive per-sample gradient norms at batch 32 (target: at least 5x faster);
- confidence vs one plain batched forward pass at batch 64 (target: at most 1.5x);
- diversity (facility-location gains of 64 candidates) time and peak memory against archives of 1k, 10k, 100k
  (target: linear growth, no n x n matrix).
Without --student a randomly initialised tiny student of the `tiny` profile's shape is used: the costs depend on
the shape, not the weights (except answer variance, whose sampled answers run to max_new_tokens).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc

import numpy as np
import torch

from acqsynth.acquisition.confidence import confidence_rewards
from acqsynth.acquisition.diversity import facility_location_gains
from acqsynth.acquisition.gradient_magnitude import gradient_norms, gradient_norms_naive
from acqsynth.acquisition.proximity import seed_centroids
from acqsynth.acquisition.scoring import AcquisitionScorer
from acqsynth.acquisition.student_batch import encode_answers
from acqsynth.config import REWARD_NAMES, AcquisitionScoreConfig, TinyModelConfig
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import student_completion, student_prompt
from acqsynth.models.loading import LoadedModel, load_model
from acqsynth.models.tiny import build_llama, train_tokenizer


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def tiny_student(problems) -> LoadedModel:
    texts = [student_prompt(p.question) + student_completion(p.reasoning, p.answer) for p in problems]
    tokenizer = train_tokenizer(texts, 640)
    return LoadedModel(build_llama(TinyModelConfig(), tokenizer, 384, seed=0).eval(), tokenizer, "tiny-random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", help="a student checkpoint directory (default: a random tiny student)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    problems = generate_word_problems(400, MathDifficulty(), seed=0)
    student = load_model(args.student) if args.student else tiny_student(problems)
    config = AcquisitionScoreConfig()
    seeds = [p.question for p in problems[200:400]]
    scorer = AcquisitionScorer(student, config)
    scorer.centroids = seed_centroids(scorer.embed(seeds), config.proximity_clusters, seed=0)
    scorer.start_archive(seeds)
    result: dict = {"student": student.name, "parameters": sum(p.numel() for p in student.model.parameters()),
                    "torch_threads": torch.get_num_threads(), "repeats": args.repeats}

    throughput = {}
    for batch_size in (1, 16, 64):
        batch = problems[:batch_size]
        scorer.config = config.model_copy(update={"batch_size": batch_size})
        per_reward = {}
        for name in REWARD_NAMES:
            seconds = median_seconds(lambda: scorer.scores([p.question for p in batch], [p.reasoning for p in batch],
                                                           [p.answer for p in batch], [name], admit=False),
                                     args.repeats)
            per_reward[name] = round(batch_size / seconds, 2)
        throughput[str(batch_size)] = per_reward
    result["samples_per_second"] = throughput

    batch = problems[:32]
    prompts = [student_prompt(p.question) for p in batch]
    answers = [student_completion(p.reasoning, p.answer) for p in batch]
    vectorised = median_seconds(lambda: gradient_norms(student, prompts, answers, 32), args.repeats)
    naive = median_seconds(lambda: gradient_norms_naive(student, prompts, answers), args.repeats)
    result["gradient_norms_batch32"] = {"vectorised_s": round(vectorised, 4), "naive_s": round(naive, 4),
                                        "speedup": round(naive / vectorised, 2), "target_speedup": 5.0}

    batch = problems[:64]
    prompts = [student_prompt(p.question) for p in batch]
    answers = [student_completion(p.reasoning, p.answer) for p in batch]
    encoded = encode_answers(student.tokenizer, prompts, answers, 384)

    def forward() -> None:
        with torch.inference_mode():
            student.model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask)

    plain = median_seconds(forward, args.repeats)
    confidence = median_seconds(lambda: confidence_rewards(student, prompts, answers, (1.0, 10.0), 64, 384),
                                args.repeats)
    result["confidence_vs_forward_batch64"] = {"forward_s": round(plain, 4), "confidence_s": round(confidence, 4),
                                               "ratio": round(confidence / plain, 3), "target_ratio": 1.5}

    rng = np.random.default_rng(0)
    candidates = rng.standard_normal((64, 384)).astype(np.float32)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    diversity = {}
    for size in (1_000, 10_000, 100_000):
        archive = rng.standard_normal((size, 384)).astype(np.float32)
        archive /= np.linalg.norm(archive, axis=1, keepdims=True)
        seconds = median_seconds(lambda: facility_location_gains(candidates, archive), args.repeats)
        tracemalloc.start()
        facility_location_gains(candidates, archive)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        diversity[str(size)] = {"seconds": round(seconds, 4), "peak_extra_mib": round(peak / 2**20, 2),
                                "archive_mib": round(archive.nbytes / 2**20, 1)}
    result["diversity_batch64"] = diversity
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
