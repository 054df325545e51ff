"""The `acqsynth` command line: plain typed functions over the flows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

import flows  # noqa: F401  (local Prefect environment first)
from acqsynth.config import PROFILES, ConfigError, Layout, load_config, profile_params, write_params
from acqsynth.stages import STAGES

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ProfileOption = Annotated[str | None, typer.Option(help=f"one of {sorted(PROFILES)}; written into params.yaml")]
ParamsOption = Annotated[Path, typer.Option("--params", help="the run's parameters")]


def _fail(error: Exception) -> None:
    typer.secho(str(error), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _select_profile(params: Path, profile: str | None) -> None:
    """Like `dvc exp run -S profile=...`: the chosen profile's values are written to params.yaml."""
    if profile is None:
        if not params.exists():
            write_params(params, profile_params("tiny"))
        return
    if profile not in PROFILES:
        _fail(ConfigError(f"--profile: expected one of {sorted(PROFILES)}, got {profile!r}"))
    current = yaml.safe_load(params.read_text(encoding="utf-8")) if params.exists() else None
    if not current or current.get("profile") != profile:
        write_params(params, profile_params(profile))


@app.command()
def init(profile: Annotated[str, typer.Option(help=f"one of {sorted(PROFILES)}")] = "tiny",
         params: ParamsOption = Path("params.yaml")) -> None:
    """Write params.yaml with every value of a profile."""
    try:
        write_params(params, profile_params(profile))
    except ConfigError as error:
        _fail(error)
    typer.echo(f"wrote {params} (profile {profile})")


@app.command()
def check(params: ParamsOption = Path("params.yaml")) -> None:
    """Validate params.yaml without running anything."""
    try:
        config = load_config(params)
    except ConfigError as error:
        _fail(error)
    typer.echo(f"{params}: valid (profile {config.profile})")


@app.command()
def run(profile: ProfileOption = None, params: ParamsOption = Path("params.yaml")) -> None:
    """Run the whole pipeline as one Prefect flow run; `dvc status` is clean afterwards."""
    try:
        _select_profile(params, profile)
        load_config(params)
    except ConfigError as error:
        _fail(error)
    from flows.pipeline import pipeline

    pipeline(params_path=str(params), root=".")
    layout = Layout()
    typer.echo("\nDone. Where things are:")
    for what, path in (("report", layout.report), ("metrics", layout.metrics), ("data", layout.root / "data"),
                       ("checkpoints", layout.root / "models"), ("quality gate results", layout.quality_reports)):
        typer.echo(f"  {what:<22} {path.resolve()}")


@app.command()
def stage(name: Annotated[str, typer.Argument(help=" | ".join(STAGES))],
          params: ParamsOption = Path("params.yaml")) -> None:
    """Run one stage as its own Prefect flow run (what each dvc.yaml stage calls)."""
    if name not in STAGES:
        _fail(ValueError(f"stage: expected one of {list(STAGES)}, got {name!r}"))
    try:
        load_config(params)
    except ConfigError as error:
        _fail(error)
    from flows.pipeline import stage as stage_flow

    stage_flow(name=name, params_path=str(params), root=".")
