"""Keep Prefect local to the project (its home inside the project, no telemetry, no remote API unless asked for),
and the console quiet: the libraries' progress bars off (the project shows its own, acqsynth.progress), whose
milestone lines go to the run's logs in Prefect."""

from __future__ import annotations

import os
from pathlib import Path


def use_local_prefect() -> None:
    # Must run before prefect is imported: its settings are read once, at import.
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers reads huggingface_hub's setting at import: its "Loading weights" and "Writing model shards" bars
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # Progress lines of work outside a run (a stage called directly, in a test) are simply not sent.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


def send_progress_to_runs() -> None:
    """The project's progress lines (acqsynth.progress) go to the Prefect run they happen in, where the UI shows
    them; not to the console, where the progress bar already shows the same."""
    import logging

    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("acqsynth.progress")
    if not any(isinstance(handler, APILogHandler) for handler in logger.handlers):
        logger.addHandler(APILogHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False
