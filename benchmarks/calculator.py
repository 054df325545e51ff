"""What GSM8K's calculator does to the generator's math samples; prints JSON.

    .venv/bin/python benchmarks/calculator.py [--root .] [--samples 320] [--out result.json]

Samples the workspace's base generator (after `acqsynth run`) on seed prompts, with and without the calculator,
at the same seed, and verifies both sets with the workspace's rules: the verified rate, rejections by check, the
step count of the verified samples, and the seconds each took.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import torch

from acqsynth import stages
from acqsynth.config import Layout, load_config
from acqsynth.generation.transformers_backend import generate
from acqsynth.models.loading import load_model
from acqsynth.verify.samples import check_samples, verify_rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--samples", type=int, default=320)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config, layout = load_config(args.root / "params.yaml"), Layout(args.root)
    prompts = stages._generator_prompts(stages._split(layout, "seed", "math"), args.samples, config.seed)
    generator = load_model(layout.base_generator)
    rules = verify_rules(config, "math")
    report = {"samples": args.samples, "generator": str(layout.base_generator)}
    for calculator in (False, True):
        torch.manual_seed(config.seed)
        started = time.perf_counter()
        texts = [g.text for g in generate(generator.model, generator.tokenizer, list(prompts["prompt"]),
                                          config.generate.max_new_tokens, config.generate.temperature,
                                          config.generate.batch_size, calculator=calculator)]
        checks = check_samples(texts, "math", rules)
        report["with_calculator" if calculator else "without_calculator"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "verified_rate": sum(c.verified for c in checks) / len(checks),
            "rejected_by_check": dict(Counter(c.reason.split(":")[0] for c in checks if not c.verified)),
            "steps_of_verified": dict(Counter(text.split("</question>")[-1].count("<<")
                                              for text, c in zip(texts, checks) if c.verified)),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
