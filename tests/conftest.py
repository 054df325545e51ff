import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"

# Prefect stays local to the test session (its home in a temporary directory, no telemetry).
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# The tests remember large artifacts' hashes in a cache of their own, not the user's.
os.environ.setdefault("ACQSYNTH_HASH_CACHE", str(Path(tempfile.mkdtemp(prefix="acqsynth-hashes-")) / "hashes.sqlite"))


@pytest.fixture(scope="session")
def smoke_workspace(tmp_path_factory) -> Path:
    """A workspace where every stage of the smoke profile has run once (through `Stage.run`, no Prefect)."""
    from acqsynth import stages
    from acqsynth.config import Layout, load_config, profile_params, write_params

    root = tmp_path_factory.mktemp("smoke")
    write_params(root / "params.yaml", profile_params("smoke"))
    config = load_config(root / "params.yaml")
    for stage in stages.PIPELINE:
        stage.run(config, Layout(root))
    return root
