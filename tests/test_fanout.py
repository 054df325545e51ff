"""Shards fanned out as Prefect tasks (threads, or a local Ray instance with 2 CPUs) give exactly the frame and the
shard files of the plain sequential run, and resume after a crash as it does."""

import json
import random
import sys

import pandas as pd
import pytest

from acqsynth.artifacts import content_hash
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import format_sample
from acqsynth.resume import ShardStore, fingerprint, run_in_shards
from acqsynth.verify.samples import check_samples
from tasks.fanout import ray_mapper, thread_mapper

N_ITEMS, SHARD_SIZE = 23, 5  # 5 shards, the last one short


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def ray_workers_read_this_module():
    """Ray's workers cannot import this test module: its shard functions travel by value."""
    pytest.importorskip("prefect_ray")
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray(prefect_api, ray_workers_read_this_module):
    """One local Ray instance (2 CPUs) for the module: ray_mapper("local") uses the running instance."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray_mapper("local")
    ray.shutdown()


@pytest.fixture(params=["threads", "ray"])
def mapper(request, prefect_api):
    if request.param == "threads":
        return thread_mapper(max_workers=2)
    return request.getfixturevalue("local_ray")


def _rows(shard: int, start: int, stop: int) -> pd.DataFrame:
    return pd.DataFrame({"item": range(start, stop), "square": [i * i for i in range(start, stop)],
                         "shard": shard, "text": [f"row {i}" for i in range(start, stop)]})


def _store_files(store: ShardStore) -> dict[str, object]:
    files = {path.name: content_hash(path) for path in store.directory.glob("shard-*.parquet")}
    return {**files, "manifest": json.loads((store.directory / "manifest.json").read_text())}


def _run(tmp_path, name, compute, map_shards, n_items=N_ITEMS):
    store = ShardStore(tmp_path / name, fingerprint("fan-out test"))
    return run_in_shards(store, n_items, SHARD_SIZE, compute, name, map_shards=map_shards), store


def test_ray_mapper_starts_and_stops_its_own_instance(prefect_api, ray_workers_read_this_module, tmp_path):
    import ray

    assert not ray.is_initialized()  # this test runs before the module's shared instance is started
    frame, _ = _run(tmp_path, "own", _rows, ray_mapper("local", num_cpus=2))
    pd.testing.assert_frame_equal(frame, _run(tmp_path, "default", _rows, None)[0])
    assert not ray.is_initialized()


def test_mapped_run_equals_the_default(mapper, tmp_path):
    expected, default_store = _run(tmp_path, "default", _rows, None)
    frame, store = _run(tmp_path, "mapped", _rows, mapper)
    pd.testing.assert_frame_equal(frame, expected)
    assert _store_files(store) == _store_files(default_store)


def test_mapped_run_computes_only_missing_shards_and_replays_done_ones_in_order(mapper, tmp_path):
    store = ShardStore(tmp_path / "resumed", fingerprint("fan-out test"))
    for shard in (0, 2):  # left by a killed run; recomputing them would change their value
        store.write(shard, _rows(shard, shard * SHARD_SIZE, (shard + 1) * SHARD_SIZE).assign(square=-1))

    def compute(shard, start, stop):
        if shard in (0, 2):
            raise AssertionError(f"shard {shard} was already done")
        return _rows(shard, start, stop)

    replayed = []
    frame = run_in_shards(store, N_ITEMS, SHARD_SIZE, compute, "resumed", on_done=lambda f: replayed.append(f),
                          map_shards=mapper)
    assert [f["shard"].iloc[0] for f in replayed] == [0, 2]
    assert (frame["square"] == -1).tolist() == [i < 5 or 10 <= i < 15 for i in range(N_ITEMS)]
    assert frame["item"].tolist() == list(range(N_ITEMS))


def test_a_failed_shard_fails_the_run_and_keeps_the_finished_ones(mapper, tmp_path):
    def compute(shard, start, stop):
        if shard == 3:
            raise ValueError("shard 3 is broken")
        return _rows(shard, start, stop)

    store = ShardStore(tmp_path / "failed", fingerprint("fan-out test"))
    with pytest.raises(ValueError, match="shard 3 is broken"):
        run_in_shards(store, N_ITEMS, SHARD_SIZE, compute, "failed", map_shards=mapper)
    assert [store.done(shard) for shard in range(5)] == [True, True, True, False, False]


def test_no_missing_shards_starts_no_workers(tmp_path):
    _, store = _run(tmp_path, "done", _rows, None)
    unreachable = ray_mapper("ray://192.0.2.1:10001")  # connecting would fail: TEST-NET-1, no such host
    assert len(run_in_shards(store, N_ITEMS, SHARD_SIZE, _rows, "done", map_shards=unreachable)) == N_ITEMS


def _generated_texts(n: int) -> list[str]:
    """Well-formed samples, some with a wrong answer or broken markup, as the generator writes them."""
    rng = random.Random(0)
    texts = []
    for problem in generate_word_problems(n, MathDifficulty(), seed=1):
        text = format_sample(problem.question, problem.reasoning, problem.answer)
        kind = rng.random()
        if kind < 0.2:
            text = format_sample(problem.question, problem.reasoning, str(int(problem.answer) + 1))
        elif kind < 0.3:
            text = text.replace("</reasoning>", "")
        texts.append(text)
    return texts


def test_verification_fanned_out_on_ray(local_ray, tmp_path):
    generated = pd.DataFrame({"completion": _generated_texts(60)})

    def check_shard(_: int, start: int, stop: int) -> pd.DataFrame:  # as the verify stage's
        checks = check_samples(list(generated["completion"].iloc[start:stop]), "math")
        return pd.DataFrame({"verified": [c.verified for c in checks], "reason": [c.reason for c in checks],
                             "question": [c.question for c in checks]})

    expected, default_store = _run(tmp_path, "default", check_shard, None, n_items=len(generated))
    frame, store = _run(tmp_path, "ray", check_shard, local_ray, n_items=len(generated))
    pd.testing.assert_frame_equal(frame, expected)
    assert _store_files(store) == _store_files(default_store)
    assert 0 < frame["verified"].sum() < len(frame)
    assert frame["reason"].str.startswith("parse: ").any()


def test_stages_on_ray_write_the_artifacts_of_the_default_runner(local_ray, smoke_workspace, tmp_path):
    """The verify and acquisition_score stages of the smoke run, rerun with their shards on Ray: the same rows
    (scores equal up to float rounding: a Ray worker runs torch on one thread)."""
    import shutil

    from acqsynth import stages
    from acqsynth.artifacts import read_table
    from acqsynth.config import Layout, load_config

    workspace = tmp_path / "workspace"
    shutil.copytree(smoke_workspace, workspace)
    config = load_config(workspace / "params.yaml")
    layout = Layout(workspace)
    for stage, path in (("verify", layout.verified), ("acquisition_score", layout.scored)):
        expected = read_table(path)
        getattr(stages, stage)(config, layout, map_shards=local_ray)
        pd.testing.assert_frame_equal(read_table(path), expected, rtol=1e-5)
    assert len(read_table(layout.scored)) > 0
