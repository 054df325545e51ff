"""Model cards: the README.md with YAML metadata that the Hugging Face Hub and `huggingface_hub.ModelCard` read,
written into each checkpoint the pipeline makes (the base generator and student, the GRPO generator, the
fine-tuned student), saying what it is and how it was made. Nothing in it changes from one run of the same inputs to
the next (no times), so a checkpoint's content hash stays a function of its inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from acqsynth import artifacts


def write_model_card(checkpoint: Path, title: str, summary: str, made_from: dict[str, str],
                     settings: dict[str, Any], results: dict[str, Any]) -> Path:
    """checkpoint/README.md: `title` and `summary`, then what it was made from (name -> content hash or model id),
    the settings of the stage that made it and what that stage measured. The YAML metadata names the library and the
    task, so the Hub shows the checkpoint as a transformers text-generation model."""
    metadata = {"library_name": "transformers", "pipeline_tag": "text-generation", "tags": ["acqsynth"],
                "acqsynth": {"made_from": made_from, "settings": settings, "results": results}}
    lines = ["---", yaml.safe_dump(metadata, sort_keys=False).rstrip(), "---", "", f"# {title}", "", summary, "",
             "Load it with `transformers.AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` "
             "on this directory.", "", "## Made from", "", "| input | content hash or model id |", "|---|---|",
             *[f"| {name} | `{value}` |" for name, value in made_from.items()], "", "## Results of the stage", "",
             "| measure | value |", "|---|---|",
             *[f"| {name} | {value:.4g} |" if isinstance(value, float) else f"| {name} | {value} |"
               for name, value in results.items()], "", "The settings are in the YAML above (`acqsynth.settings`).",
             ""]
    path = checkpoint / "README.md"
    artifacts.atomic_write_text(path, "\n".join(lines))
    return path
