"""Prefect tasks: one per pipeline stage, wrapping `acqsynth.stages`."""

from tasks.prefect_env import use_local_prefect

use_local_prefect()
