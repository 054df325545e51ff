"""Prefect flows composing the stage tasks, and the `acqsynth` command line."""

import tasks  # noqa: F401  (sets Prefect's local environment before prefect is imported)
