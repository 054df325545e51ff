"""Throughput of sharded stage work fanned out over workers, and of generation; prints JSON.

    .venv/bin/python benchmarks/scale.py [--verify-items 4096] [--score-items 512] [--out scale.json]

- verification (`check_samples` over generated-sample texts, a few of them corrupted) and scoring (the confidence
  reward of a tiny random student) through `run_in_shards` on the same shards: sequentially in this process, as
  Prefect tasks on 2 threads, and on a local Ray instance with 1 and 2 workers; items/s. Ray's start-up (`ray.init`)
  is reported apart; "cold" is the first fan-out onto fresh workers (process start, imports: what one stage run
  pays), "warm" a second one.
- generation: tokens/s of the transformers backend at batch sizes 1, 8 and 64 on a tiny random model (greedy,
  `--new-tokens` per prompt; a random model seldom ends a completion early).
Every fan-out runs its shards as Prefect task runs against a temporary Prefect server. The load average at the
start is reported: other work on the machine skews every number.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from acqsynth.acquisition.confidence import confidence_rewards
from acqsynth.config import AcquisitionScoreConfig, TinyModelConfig
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import format_sample, student_completion, student_prompt
from acqsynth.generation import TransformersGenerator
from acqsynth.models.loading import LoadedModel, best_device
from acqsynth.models.tiny import build_llama, train_tokenizer
from acqsynth.resume import ShardMapper, ShardStore, fingerprint, run_in_shards
from acqsynth.verify.samples import check_samples
from tasks.fanout import ray_mapper, thread_mapper  # before prefect: keeps it local, no telemetry


def sample_texts(n: int) -> list[str]:
    """Generated-sample texts: mostly correct, some with a wrong answer or broken markup."""
    rng = random.Random(0)
    texts = []
    for problem in generate_word_problems(n, MathDifficulty(), seed=0):
        answer = str(int(problem.answer) + 1) if rng.random() < 0.2 else problem.answer
        text = format_sample(problem.question, problem.reasoning, answer)
        texts.append(text.replace("</reasoning>", "") if rng.random() < 0.1 else text)
    return texts


def tiny_student(device: str) -> LoadedModel:
    problems = generate_word_problems(400, MathDifficulty(), seed=1)
    tokenizer = train_tokenizer([student_prompt(p.question) + student_completion(p.reasoning, p.answer)
                                 for p in problems], 640)
    model = build_llama(TinyModelConfig(), tokenizer, 384, seed=0).eval().to(device)
    return LoadedModel(model, tokenizer, "tiny-random")


def throughput(n_items: int, shard_size: int, compute: Callable[[int, int, int], pd.DataFrame],
               map_shards: ShardMapper | None, workdir: Path) -> float:
    """Items/s of one full run_in_shards into a fresh shard store."""
    store = ShardStore(Path(tempfile.mkdtemp(dir=workdir)), fingerprint("scale benchmark"))
    started = time.perf_counter()
    frame = run_in_shards(store, n_items, shard_size, compute, "benchmark", map_shards=map_shards)
    seconds = time.perf_counter() - started
    assert len(frame) == n_items
    return round(n_items / seconds, 1)


def fan_out_throughputs(n_items: int, shard_size: int, compute: Callable[[int, int, int], pd.DataFrame],
                        workdir: Path) -> dict:
    import ray

    result: dict = {"items": n_items, "shard_size": shard_size, "shards": -(-n_items // shard_size),
                    "items_per_second": {"sequential": throughput(n_items, shard_size, compute, None, workdir),
                                         "prefect_threads_2": throughput(n_items, shard_size, compute,
                                                                         thread_mapper(2), workdir)}}
    for workers in (1, 2):
        started = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        start_seconds = time.perf_counter() - started
        mapper = ray_mapper("local")  # uses the instance just started
        cold = throughput(n_items, shard_size, compute, mapper, workdir)
        warm = throughput(n_items, shard_size, compute, mapper, workdir)
        ray.shutdown()
        result["items_per_second"][f"ray_{workers}_cold"] = cold
        result["items_per_second"][f"ray_{workers}_warm"] = warm
        result[f"ray_{workers}_start_seconds"] = round(start_seconds, 1)
    return result


def generation_throughput(student: LoadedModel, prompts: list[str], new_tokens: int) -> dict[str, float]:
    tokens_per_second = {}
    for batch_size in (1, 8, 64):
        generator = TransformersGenerator(student, batch_size)
        generator.generate(prompts[:batch_size], 4)  # warm-up
        started = time.perf_counter()
        generations = generator.generate(prompts, new_tokens, with_margins=True)  # margins: one per token
        seconds = time.perf_counter() - started
        tokens_per_second[str(batch_size)] = round(sum(len(g.margins) for g in generations) / seconds, 1)
    return tokens_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify-items", type=int, default=4096)
    parser.add_argument("--verify-shard-size", type=int, default=256)
    parser.add_argument("--score-items", type=int, default=512)
    parser.add_argument("--score-shard-size", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=64, help="prompts per generation run")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--torch-threads", type=int, help="torch threads in this process (Ray workers use one)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    import torch
    from prefect.testing.utilities import prefect_test_harness

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    device = best_device()
    result: dict = {"device": device, "torch_threads": torch.get_num_threads(), "cpu_cores": os.cpu_count(),
                    "load_average_at_start": [round(load, 2) for load in os.getloadavg()]}
    texts = sample_texts(args.verify_items)
    problems = generate_word_problems(args.score_items, MathDifficulty(), seed=2)
    prompts = [student_prompt(p.question) for p in problems]
    answers = [student_completion(p.reasoning, p.answer) for p in problems]
    student = tiny_student(device)
    config = AcquisitionScoreConfig(batch_size=16)

    def verify_shard(_: int, start: int, stop: int) -> pd.DataFrame:
        checks = check_samples(texts[start:stop], "math")
        return pd.DataFrame({"verified": [c.verified for c in checks], "reason": [c.reason for c in checks]})

    def score_shard(_: int, start: int, stop: int) -> pd.DataFrame:
        return pd.DataFrame({"confidence": confidence_rewards(student, prompts[start:stop], answers[start:stop],
                                                              config.confidence_clip, config.batch_size,
                                                              config.max_length)})

    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=180):
        workdir = Path(tmp)
        result["verification"] = fan_out_throughputs(args.verify_items, args.verify_shard_size, verify_shard, workdir)
        result["scoring_confidence"] = fan_out_throughputs(args.score_items, args.score_shard_size, score_shard,
                                                           workdir)
    result["generation_tokens_per_second"] = {
        "backend": "transformers", "device": device, "model": "tiny-random (TinyModelConfig defaults)",
        "prompts": args.prompts, "new_tokens": args.new_tokens,
        "by_batch_size": generation_throughput(student, prompts[: args.prompts], args.new_tokens)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
