"""What a cache check costs on a large artifact: the content hash of a 1 GB dummy checkpoint read in full (as
before the hash cache, and with ACQSYNTH_HASH_CACHE="") and remembered (every later check while its files are
unchanged); prints JSON.

    .venv/bin/python benchmarks/hashing.py [--gigabytes 1]

Each stage task of a no-op `acqsynth run` hashes every path it reads for its cache key, and the flow hashes each
stage's outputs to check them: models/base alone is read by nine stages.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from acqsynth import artifacts


def timed(path: Path) -> tuple[float, str]:
    started = time.perf_counter()
    digest = artifacts.content_hash(path)
    return time.perf_counter() - started, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "models" / "base" / "student"
        checkpoint.mkdir(parents=True)
        block = os.urandom(1 << 20)
        with (checkpoint / "model.safetensors").open("wb") as handle:
            for _ in range(int(args.gigabytes * 1024)):
                handle.write(block)
        (checkpoint / "config.json").write_text("{}")
        os.environ["ACQSYNTH_HASH_CACHE"] = ""
        uncached = [timed(checkpoint)[0] for _ in range(3)]
        os.environ["ACQSYNTH_HASH_CACHE"] = str(Path(tmp) / "hashes.sqlite")
        first, digest = timed(checkpoint)
        remembered = [timed(checkpoint) for _ in range(3)]
        assert all(value == digest for _, value in remembered)
    print(json.dumps({"gigabytes": args.gigabytes,
                      "read_in_full_seconds": [round(value, 3) for value in uncached],
                      "first_check_with_cache_seconds": round(first, 3),
                      "remembered_seconds": [round(seconds, 4) for seconds, _ in remembered]}, indent=2))


if __name__ == "__main__":
    main()
