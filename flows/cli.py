"""The `acqsynth` command line: plain typed functions over the flows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import yaml

import flows  # noqa: F401  (local Prefect environment first)
from acqsynth.config import (PROFILES, TINY, ConfigError, Layout, load_config, profile_params, read_params,
                             resolve, write_params)
from acqsynth.artifacts import WorkspaceBusy, workspace_lock
from acqsynth.stages import STAGES

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ProfileOption = Annotated[str | None, typer.Option(help=f"one of {sorted(PROFILES)}; written into params.yaml")]
ParamsOption = Annotated[Path, typer.Option("--params", help="the run's parameters")]


def _fail(error: Exception) -> None:
    typer.secho(str(error), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@contextmanager
def _locked(shared: bool = False) -> Iterator[None]:
    try:
        with workspace_lock(Path("."), shared):
            yield
    except WorkspaceBusy as error:
        _fail(error)


def _select_profile(params: Path, profile: str | None) -> None:
    """Like `dvc exp run -S profile=...`: the chosen profile's values are written to params.yaml."""
    if profile is None:
        if not params.exists():
            write_params(params, profile_params("tiny"))
        return
    if profile not in PROFILES:
        _fail(ConfigError(f"--profile: expected one of {sorted(PROFILES)}, got {profile!r}"))
    current = read_params(params) if params.exists() else None
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
def check(profile: Annotated[str | None, typer.Option(help=f"check a profile ({sorted(PROFILES)}) instead of "
                                                           "params.yaml")] = None,
          params: ParamsOption = Path("params.yaml")) -> None:
    """Validate the parameters and that every model they name is present (a complete local checkpoint, or a hub id
    in the local cache), without loading or downloading anything."""
    from acqsynth.models.loading import missing_model

    try:
        config = resolve({"profile": profile}, f"profile {profile!r}") if profile else load_config(params)
    except ConfigError as error:
        _fail(error)
    where = f"profile {profile}" if profile else str(params)
    problems = [f"build_models.{role}: {problem}" for role in ("generator", "student")
                if (source := getattr(config.build_models, role)) != TINY and (problem := missing_model(source))]
    if problems:
        _fail(ConfigError(f"{where}: valid, but models are missing:\n  " + "\n  ".join(problems)))
    typer.echo(f"{where}: valid (profile {config.profile}); models present")


@app.command()
def run(profile: ProfileOption = None, params: ParamsOption = Path("params.yaml")) -> None:
    """Run the whole pipeline as one Prefect flow run; `dvc status` is clean afterwards."""
    with _locked():
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
def compare(profile: ProfileOption = None, params: ParamsOption = Path("params.yaml"),
            seed: Annotated[list[int] | None, typer.Option(help="run only these seeds (repeatable); several "
                                                           "processes can share the seeds out")] = None,
            skip_shared: Annotated[bool, typer.Option(help="use the shared stages' outputs as they are")] = False,
            report_only: Annotated[bool, typer.Option(help="run nothing; report the computed runs")] = False) -> None:
    """Compare the method with every baseline (several seeds each), cross-model transfer and a size curve; writes
    reports/compare/<domain>/report.md. Runs already computed are reused."""
    with _locked(shared=(skip_shared or report_only) and profile is None):
        try:
            _select_profile(params, profile)
            config = load_config(params)
        except ConfigError as error:
            _fail(error)
        from flows.compare import compare as compare_flow

        result = compare_flow(params_path=str(params), root=".", seeds=seed, run_shared=not skip_shared,
                              report_only=report_only)
    typer.echo(f"\n{result['runs']} runs ({result['reused']} reused, {result['failed']} failed); report: "
               f"{result['report']}")
    typer.echo(f"domain {config.domain}; arms live in experiments/{config.domain}/")


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

    with _locked():
        stage_flow(name=name, params_path=str(params), root=".")


PIPELINE_ENTRYPOINT = "flows/pipeline.py:pipeline"


@app.command()
def serve(deployments: Annotated[Path, typer.Option(help="Prefect deployments file")] = Path("prefect.yaml")) -> None:
    """Serve the deployments of prefect.yaml from this checkout (needs a running Prefect server)."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        _fail(ValueError("acqsynth serve needs a running Prefect server: start one with `acqsynth server` and set "
                         "PREFECT_API_URL=http://127.0.0.1:4200/api"))
    from prefect import serve as prefect_serve
    from prefect.client.schemas.schedules import CronSchedule

    from flows.pipeline import pipeline

    specs = (yaml.safe_load(deployments.read_text(encoding="utf-8")) or {}).get("deployments") or []
    if not specs:
        _fail(ValueError(f"{deployments}: no deployments listed under 'deployments'"))
    served = []
    for index, spec in enumerate(specs):
        if spec.get("entrypoint") != PIPELINE_ENTRYPOINT:
            _fail(ValueError(f"{deployments}: deployments[{index}].entrypoint: expected {PIPELINE_ENTRYPOINT!r}, "
                             f"got {spec.get('entrypoint')!r}"))
        schedules = [CronSchedule(cron=s["cron"], timezone=s.get("timezone", "UTC"))
                     for s in spec.get("schedules", [])]
        served.append(pipeline.to_deployment(name=spec["name"], description=spec.get("description"),
                                             parameters=spec.get("parameters", {}), schedules=schedules))
    prefect_serve(*served)


@app.command()
def server(port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 4200) -> None:
    """Start a local Prefect server (its database in the project's .prefect/); stop it with Ctrl-C."""
    import os
    import sys

    typer.echo(f"Prefect UI and API on http://127.0.0.1:{port}; in another shell:\n"
               f"  export PREFECT_API_URL=http://127.0.0.1:{port}/api && acqsynth serve")
    os.execvp(sys.executable, [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)])
