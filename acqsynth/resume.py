"""Resuming after a crash, without loss.

Table stages write their rows in numbered shards with a manifest, so that a stage killed at any moment and run
again computes only the missing shards and assembles exactly the rows of an uninterrupted run. A shard is listed in
the manifest only after its file is in place (both written atomically), with its content hash; a listed shard
whose file is missing or altered is computed again. The manifest records a fingerprint of the stage's inputs and
parameters: shards left by a run with other inputs are discarded, never mixed in.

Trainers (GRPO, SFT) save checkpoints into a directory stamped with the same kind of fingerprint and resume from
the newest one."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from acqsynth import artifacts


class ShardStore:
    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.directory = directory
        self.fingerprint = fingerprint
        self._manifest_path = directory / "manifest.json"
        manifest = self._read_manifest()
        if manifest.get("fingerprint") != fingerprint:
            shutil.rmtree(directory, ignore_errors=True)
            manifest = {"fingerprint": fingerprint, "shards": {}}
        self._shards: dict[str, str] = manifest["shards"]

    def _read_manifest(self) -> dict:
        try:
            return json.loads(self._manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _path(self, index: int) -> Path:
        return self.directory / f"shard-{index:06d}.parquet"

    def done(self, index: int) -> bool:
        path = self._path(index)
        return self._shards.get(str(index)) is not None and path.is_file() and \
            artifacts.content_hash(path) == self._shards[str(index)]

    def write(self, index: int, frame: pd.DataFrame) -> None:
        path = self._path(index)
        artifacts.write_table(path, frame)
        self._shards[str(index)] = artifacts.content_hash(path)
        artifacts.write_json(self._manifest_path, {"fingerprint": self.fingerprint, "shards": self._shards})

    def read(self, index: int) -> pd.DataFrame:
        return artifacts.read_table(self._path(index))

    def assemble(self, n_shards: int) -> pd.DataFrame:
        missing = [index for index in range(n_shards) if not self.done(index)]
        if missing:
            raise ValueError(f"{self.directory}: shards {missing} are missing or altered")
        return pd.concat([self.read(index) for index in range(n_shards)], ignore_index=True)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


ShardCompute = Callable[[int, int, int], pd.DataFrame]
# Computes the given (shard, start, stop) shards with the compute function, yielding their frames in that order.
ShardMapper = Callable[[ShardCompute, list[tuple[int, int, int]]], Iterable[pd.DataFrame]]


def map_sequentially(compute: ShardCompute, shards: list[tuple[int, int, int]]) -> Iterator[pd.DataFrame]:
    """The default `ShardMapper`: in this process, each shard computed only when its frame is asked for."""
    return (compute(shard, start, stop) for shard, start, stop in shards)


def run_in_shards(store: ShardStore, n_items: int, shard_size: int, compute: ShardCompute, description: str,
                  on_done: Callable[[pd.DataFrame], None] | None = None,
                  map_shards: ShardMapper | None = None) -> pd.DataFrame:
    """Rows [0, n_items) computed shard by shard with `compute(shard, start, stop)`; shards a killed run finished
    are read back (and handed to `on_done`, in order, to restore any state they built) instead of computed again.

    `map_shards` computes the missing shards elsewhere (in parallel: see tasks/fanout.py); their frames are still
    written in shard order, as they come, so the stored shards of a killed run are always the ones it had reached.
    Only a `compute` that is a pure function of its shard may be mapped: state it changes in a worker (e.g. the
    diversity archive of acquisition scoring) never comes back to this process."""
    from acqsynth.progress import progress

    n_shards = -(-n_items // shard_size)
    bounds = [(shard, shard * shard_size, min(n_items, (shard + 1) * shard_size)) for shard in range(n_shards)]
    missing = [bound for bound in bounds if not store.done(bound[0])]
    pending = {shard for shard, _, _ in missing}
    frames = iter((map_shards or map_sequentially)(compute, missing))
    with progress(description, n_items) as bar:
        for shard, start, stop in bounds:
            if shard in pending:
                frame = next(frames, None)
                if frame is None:
                    raise RuntimeError(f"{description}: the shard mapper returned no frame for shard {shard}")
                store.write(shard, frame)
            elif on_done is not None:
                on_done(store.read(shard))
            bar.advance(stop - start)
    # Also lets a mapper that is a generator leave its `with` blocks (stop its workers) now.
    if next(frames, None) is not None:
        raise RuntimeError(f"{description}: the shard mapper returned more frames than the {len(missing)} shards")
    return store.assemble(n_shards)


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def checkpoint_dir(directory: Path, fingerprint: str) -> Path:
    """A trainer's checkpoint directory, kept across crashed runs with the same inputs and emptied when they
    differ (a checkpoint of another run must never be resumed)."""
    stamp = directory / "fingerprint.json"
    try:
        same = json.loads(stamp.read_text(encoding="utf-8")) == fingerprint
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(directory, ignore_errors=True)
        artifacts.write_json(stamp, fingerprint)
    return directory


def checkpoint_damage(checkpoint: Path) -> str | None:
    """Why a trainer checkpoint cannot be resumed, or None: its safetensors must parse to the end and its torch
    files (zip archives) must have their central directory, which a truncation cuts off."""
    import zipfile

    from safetensors import SafetensorError, safe_open

    for path in sorted(checkpoint.iterdir()):
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as weights:
                    weights.keys()
            elif path.suffix in (".pt", ".pth", ".bin"):
                zipfile.ZipFile(path).close()
        except (OSError, zipfile.BadZipFile, SafetensorError) as error:
            return f"{path}: {type(error).__name__}: {error}"
    return None


def last_checkpoint(directory: Path) -> tuple[str | None, int]:
    """The newest complete, undamaged `checkpoint-<step>` a Hugging Face trainer left in `directory`, and its step
    (0 when none). The trainer writes `trainer_state.json` last: a checkpoint a kill cut short has none and is
    skipped; a damaged one (`checkpoint_damage`) is removed with a warning, so an earlier one or a fresh start
    follows instead of the same failure on every rerun."""
    steps = sorted(((int(path.name.rsplit("-", 1)[1]), path) for path in directory.glob("checkpoint-*")
                    if path.name.rsplit("-", 1)[1].isdigit() and (path / "trainer_state.json").is_file()),
                   reverse=True)
    for step, path in steps:
        if (damage := checkpoint_damage(path)) is None:
            return str(path), step
        logging.getLogger(__name__).warning("discarding a damaged checkpoint: %s", damage)
        shutil.rmtree(path, ignore_errors=True)
    return None, 0
