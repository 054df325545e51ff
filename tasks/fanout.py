"""Fan-out of a stage's shards as Prefect tasks, one task run per shard: `thread_mapper` runs them on threads of
this process, `ray_mapper` on a Ray cluster. Both are `ShardMapper`s for `acqsynth.resume.run_in_shards`, which
still writes each frame to the shard store as it comes, in shard order, so a killed run resumes as before.

The shards are submitted straight to the mapper's task runner rather than from a subflow: a subflow would hand back
its frames only once all had finished. Inside a running flow the shard task runs belong to that flow run.

Only a shard function that is a pure function of its shard may be fanned out (see `run_in_shards`). On Ray it is
pickled with cloudpickle, closure included, and put in Ray's object store once per fan-out; a closure holding a torch
model ships the whole model to every worker (fine for the tiny models; a large one should be loaded by the shard
function itself). Each Ray worker is a process with one CPU, so torch runs one thread per worker. Functions of an
importable module (acqsynth, tasks) pickle by reference: the workers of a remote cluster need acqsynth installed,
and a module they cannot import (a test module) must be registered with `ray.cloudpickle.register_pickle_by_value`.
Per-shard torch seeds (`torch.manual_seed` in a shard function) hold on Ray, where every worker process has its own
generator, but not on more than one thread: threads share torch's global generator. Ray gives its tasks no GPU
unless asked (`prefect_ray.context.remote_options(num_gpus=...)` around the run): a closure holding a CUDA model
cannot be unpickled in a worker without one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from acqsynth.resume import ShardCompute, ShardMapper


# The shard store is the cache; hashing the inputs would pickle the compute function (and any model it holds).
@task(name="shard", task_run_name="shard-{shard}", cache_policy=NO_CACHE)
def compute_shard(compute: ShardCompute, shard: int, start: int, stop: int) -> pd.DataFrame:
    return compute(shard, start, stop)


def thread_mapper(max_workers: int = 1) -> ShardMapper:
    """Shards as task runs on `max_workers` threads (more than one only for shard functions that use no global
    random state, e.g. verification)."""

    def map_shards(compute: ShardCompute, shards: list[tuple[int, int, int]]) -> Iterator[pd.DataFrame]:
        return _fan_out(ThreadPoolTaskRunner(max_workers=max_workers), compute, shards)

    return map_shards


def ray_mapper(address: str = "local", num_cpus: int | None = None) -> ShardMapper:
    """Shards as task runs on Ray through prefect-ray's RayTaskRunner. `address` "local" starts a Ray instance on
    this machine with `num_cpus` workers (default: one per core) for each fan-out and stops it after; a Ray instance
    already started in this process is used as it is. An address such as "ray://head:10001" connects to a running
    cluster, whose workers must reach this process's Prefect API: set PREFECT_API_URL to a server they can reach
    (the temporary server Prefect starts when none is set listens on 127.0.0.1 only)."""

    def map_shards(compute: ShardCompute, shards: list[tuple[int, int, int]]) -> Iterator[pd.DataFrame]:
        from prefect_ray import RayTaskRunner

        if address == "local":
            # A fan-out lives as long as one stage: no dashboard to start and serve.
            runner = RayTaskRunner(init_kwargs={"num_cpus": num_cpus, "include_dashboard": False})
        else:
            runner = RayTaskRunner(address=address)
        return _fan_out(runner, compute, shards, ship=_ray_put)

    return map_shards


def _ray_put(compute: ShardCompute) -> Any:
    """One copy in the object store for all shards; the task runner resolves the reference in each worker."""
    import ray

    return ray.put(compute)


def _fan_out(runner: TaskRunner, compute: ShardCompute, shards: list[tuple[int, int, int]],
             ship: Callable[[ShardCompute], Any] = lambda compute: compute) -> Iterator[pd.DataFrame]:
    """Submit every shard, then yield the frames in shard order as they finish. The runner starts (e.g. Ray) only
    when there is a shard to compute, and stops once the last frame is taken."""
    if not shards:
        return
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    # Workers in other processes get this process's settings with each task: with the API URL pinned they report to
    # the API this process uses (else each would start a temporary server of its own). Outside a flow, task runs
    # log locally only.
    settings = {PREFECT_API_URL: str(get_client(sync_client=True).api_url),
                PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}
    with temporary_settings(settings), runner:
        shipped = ship(compute)
        futures = [runner.submit(compute_shard, {"compute": shipped, "shard": shard, "start": start, "stop": stop})
                   for shard, start, stop in shards]
        for future in futures:
            yield future.result()
