"""A run's data as a Hugging Face dataset: the tables it kept, each a config of one dataset directory, with a dataset
card (README.md) whose YAML metadata says how the data was made. `datasets.load_dataset(directory, "selected")`
opens it; `huggingface_hub` pushes it to the Hub as it is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from acqsynth import artifacts
from acqsynth.config import Layout, PipelineConfig

# config name -> (table, what it holds); the first is the dataset's default config
TABLES = {
    "selected": ("selected", "the fine-tuning set: the exact prompt and completion the student is trained on, and "
                 "for each synthetic sample its seed, generator, what its verification found and every acquisition "
                 "reward"),
    "scored": ("scored", "every verified sample with all acquisition rewards and their configured combination"),
    "verified": ("verified", "the generated samples that passed verification"),
    "rejected": ("rejected", "the generated samples that failed verification, each with the check that failed"),
    "generated": ("generated", "everything the generator wrote, parsed or not"),
}


def _hash(path: Path) -> str | None:
    return artifacts.content_hash(path) if path.exists() else None


def card_metadata(config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """How the data was made: the models and their content hashes, the reward, the verification settings and
    rates, the parameters' hash and the seed split."""
    verify = artifacts.read_json(layout.stage_metrics("verify")) if layout.stage_metrics("verify").is_file() else {}
    values = config.model_dump(mode="json")
    return {
        "profile": config.profile,
        "domain": config.domain,
        "seed": config.seed,
        "data_seed": config.data_seed,
        "generator": {"checkpoint": str(layout.policy), "content_hash": _hash(layout.policy),
                      "base": config.build_models.generator, "grpo_steps": config.policy_update.max_steps},
        "student": {"checkpoint": str(layout.base_student), "content_hash": _hash(layout.base_student),
                    "base": config.build_models.student},
        "reward": values["policy_update"]["reward"],
        "selection": values["select"],
        "verification": {"settings": values["verify"],
                         **{key: verify[key] for key in ("verified_rate", "n_checked", "n_verified",
                                                         "rejected_by_check") if key in verify}},
        "seed_split": {"path": str(layout.split("seed")), "content_hash": _hash(layout.split("seed")),
                       "source": config.prepare.sources[config.domain]},
        "params_hash": hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest(),
    }


def write_dataset(config: PipelineConfig, layout: Layout, out: Path) -> list[str]:
    """Writes the run's tables (those that exist) and the card into out; returns the configs written."""
    written = []
    staged = out.with_name(f".{out.name}.staging")
    shutil.rmtree(staged, ignore_errors=True)
    (staged / "data").mkdir(parents=True)
    rows, files = {}, {}
    for name, (table, _) in TABLES.items():
        source = getattr(layout, table)
        if source.is_file():
            frame = artifacts.read_table(source)
            # The content in the file's name: `datasets` caches a local dataset under its directory and file names,
            # so a re-export under the same names would be read from the cache as the rows of the first.
            files[name] = f"data/{name}-{artifacts.content_hash(source)[:12]}.parquet"
            artifacts.write_table(staged / files[name], frame)
            rows[name] = len(frame)
            written.append(name)
    if "selected" not in written:
        shutil.rmtree(staged)
        raise artifacts.ArtifactError(f"{layout.selected}: not found; run the pipeline (or `acqsynth stage select`) "
                                      "before exporting its data")
    metadata = {
        "configs": [{"config_name": name, "data_files": [{"split": "train", "path": files[name]}],
                     **({"default": True} if name == written[0] else {})} for name in written],
        "tags": ["synthetic", "acqsynth", config.domain],
        "acqsynth": card_metadata(config, layout),
    }
    body = [
        f"# acqsynth synthetic data: {config.domain}, profile `{config.profile}`, seed {config.seed}", "",
        "Written by a generator trained with GRPO to write the samples the student learns most from "
        "(AcquisitionSynthesis, arXiv 2605.13149); every synthetic sample passed the domain's verifier. The YAML "
        "above (`acqsynth`) names the models, the reward, the verification settings and rates, and the "
        "parameters' hash.", "",
        "| config | rows | what it holds |", "|---|---|---|",
        *[f"| {name} | {rows[name]} | {TABLES[name][1]} |" for name in written], "",
        "```python",
        "from datasets import load_dataset",
        f'train = load_dataset("<this directory or repo>", "{written[0]}", split="train")',
        "```", "",
    ]
    artifacts.atomic_write_text(staged / "README.md",
                                f"---\n{yaml.safe_dump(metadata, sort_keys=False)}---\n\n" + "\n".join(body))
    artifacts.promote(staged, out)
    return written


def push_to_hub(directory: Path, repo_id: str, private: bool = True) -> str:
    """Uploads a directory that write_dataset made as the dataset repo `repo_id` (the token from HF_TOKEN or
    `huggingface-cli login`); returns its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(directory), repo_id=repo_id, repo_type="dataset",
                      commit_message="acqsynth export")
    return f"https://huggingface.co/datasets/{repo_id}"
