"""The `acqsynth` command line: plain typed functions over the flows."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import yaml

import flows  # noqa: F401  (local Prefect environment first)
from acqsynth.config import (PROFILES, TINY, ConfigError, Layout, differences_from_profile, load_config, profile_params,
                             read_params, resolve, unknown_name, write_params)
from acqsynth.artifacts import WorkspaceBusy, read_json, workspace_lock
from acqsynth.quality.gates import DOCS
from acqsynth.stages import PIPELINE

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

ProfileOption = Annotated[str | None, typer.Option(help=f"one of {sorted(PROFILES)}; written into params.yaml")]
ParamsOption = Annotated[Path, typer.Option("--params", help="the run's parameters")]
ForceOption = Annotated[bool, typer.Option(help="let --profile replace a params file that holds values of your own "
                                                "(kept as <file>.bak)")]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"acqsynth {version('acqsynth')}")
        raise typer.Exit()


def _project_errors() -> tuple[type[BaseException], ...]:
    """What the project raises for bad data, a failed gate, a missing artifact, a broken model or host: errors
    whose message says what to fix, so a person gets the message, not the traceback."""
    from acqsynth.artifacts import ArtifactError
    from acqsynth.models.loading import CheckpointError
    from acqsynth.quality.gates import GateFailed
    from acqsynth.verify.sandbox import SandboxUnavailable

    return ArtifactError, CheckpointError, GateFailed, SandboxUnavailable, WorkspaceBusy


class _WithoutOurTracebacks(logging.Filter):
    """Prefect logs a failed task's and flow's exception with its traceback; for the project's own errors the
    message line is kept and the traceback dropped (`acqsynth --debug` keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], _project_errors() + (ConfigError,)):
            record.exc_info = record.exc_text = None
        return True


_DEBUG = {"on": False}


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="print the version and exit")] = False,
         debug: Annotated[bool, typer.Option("--debug", help="show full tracebacks")] = False) -> None:
    """Targeted synthetic training data: GRPO on a generator, with acquisition functions on the student as reward."""
    _DEBUG["on"] = debug
    for name in ("prefect.task_runs", "prefect.flow_runs"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, _WithoutOurTracebacks)]:
            logger.removeFilter(old)
        if not debug:
            logger.addFilter(_WithoutOurTracebacks())


def _fail(error: Exception) -> None:
    """Bad input: its message, exit status 2."""
    typer.secho(str(error), fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@contextmanager
def _reported() -> Iterator[None]:
    """Runs a command's work: bad parameters exit 2, the project's other errors (a failed gate, a damaged or missing
    artifact, a full disk) exit 1, each as its message alone unless --debug."""
    try:
        yield
    except ConfigError as error:
        if _DEBUG["on"]:
            raise
        _fail(error)
    except (*_project_errors(), OSError) as error:
        if _DEBUG["on"] or (isinstance(error, OSError) and error.filename is None):
            raise  # an OS error that names no file is not ours to explain
        typer.secho(f"{type(error).__name__}: {error}" if isinstance(error, OSError) else str(error),
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None


def _in_a_project(params: Path) -> None:
    """A workspace is a directory holding params.yaml or dvc.yaml (the checkout has both): a run started anywhere
    else would scatter data/ and models/ into it."""
    if not params.exists() and not Path("dvc.yaml").exists():
        _fail(ConfigError(f"{Path.cwd()}: not an acqsynth workspace (no {params} or dvc.yaml here). Run it in the "
                          "checkout, or write the parameters here first: acqsynth init [--profile tiny]"))


@contextmanager
def _locked(shared: bool = False) -> Iterator[None]:
    try:
        with workspace_lock(Path("."), shared):
            yield
    except WorkspaceBusy as error:
        _fail(error)


def _select_profile(params: Path, profile: str | None, force: bool = False) -> None:
    """Like `dvc exp run -S profile=...`: the chosen profile's values are written to params.yaml. A params.yaml
    holding anything but a profile's values exactly is the user's: it is replaced only with --force, and then kept
    as params.yaml.bak."""
    if profile is None:
        if not params.exists():
            write_params(params, profile_params("tiny"))
        return
    if profile not in PROFILES:
        _fail(ConfigError(unknown_name("--profile", profile, sorted(PROFILES))))
    wanted = profile_params(profile)
    if not params.exists():
        write_params(params, wanted)
        return
    current = resolve(read_params(params), str(params)).model_dump(mode="json")
    if current == wanted:
        return
    backup = params.with_name(params.name + ".bak")
    if current not in [profile_params(name) for name in PROFILES]:
        if not force:
            _fail(ConfigError(
                f"{params}: holds values of your own (not those of profile {current['profile']!r} as shipped), which "
                f"--profile {profile} would replace. Pass --force to replace them (the old file is kept as {backup}), "
                f"or write the profile to another file: acqsynth init --profile {profile} --params {profile}.yaml, "
                f"then --params {profile}.yaml"))
        from acqsynth.artifacts import atomic_write_bytes

        atomic_write_bytes(backup, params.read_bytes())
        typer.echo(f"kept your {params} as {backup}")
    write_params(params, wanted)
    typer.echo(f"{params}: profile {profile} (was {current['profile']})")


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

    from acqsynth.comparison.arms import main_arms

    try:
        config = resolve({"profile": profile}, f"profile {profile!r}") if profile else load_config(params)
        main_arms(config)  # the names in compare.arms
    except ConfigError as error:
        _fail(error)
    where = f"profile {profile}" if profile else str(params)
    problems = [f"build_models.{role}: {problem}" for role in ("generator", "student")
                if (source := getattr(config.build_models, role)) != TINY and (problem := missing_model(source))]
    if problems:
        _fail(ConfigError(f"{where}: valid, but models are missing:\n  " + "\n  ".join(problems)))
    typer.echo(f"{where}: valid (profile {config.profile}); models present")
    _say_differences(where, config)


def _say_differences(where: str, config) -> None:
    """Name the values that are not the profile's, so the profile is never a label that the values contradict."""
    if differences := differences_from_profile(config):
        typer.secho(f"{where}: {len(differences)} value(s) differ from profile {config.profile}:\n  "
                    + "\n  ".join(differences), fg=typer.colors.YELLOW)


def run_headline(report: dict) -> str:
    """The run's result in one line, from metrics/report.json: in-domain accuracy before -> after, forgetting on the
    other domains, and the verified rate."""
    gain = report["in_domain_after_accuracy"] - report["in_domain_before_accuracy"]
    forgetting = ", ".join(f"{key.removeprefix('forgetting_drop_')} {100 * value:+.1f}"
                           for key, value in report.items() if key.startswith("forgetting_drop_"))
    return (f"{report['domain']}: in-domain accuracy {100 * report['in_domain_before_accuracy']:.1f}% -> "
            f"{100 * report['in_domain_after_accuracy']:.1f}% ({100 * gain:+.1f} pts); forgetting (drop, pts): "
            f"{forgetting}; verified {100 * report['verified_rate']:.1f}% of the generated samples")


def run_url(flow_run_id) -> str | None:
    """The run's page in the Prefect UI, when a server is set (a temporary server is gone when the run ends)."""
    import os

    if not os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


@app.command()
def run(profile: ProfileOption = None, params: ParamsOption = Path("params.yaml"), force: ForceOption = False) -> None:
    """Run the whole pipeline as one Prefect flow run; `dvc status` is clean afterwards."""
    _in_a_project(params)
    with _locked():
        try:
            _select_profile(params, profile, force)
            _say_differences(str(params), load_config(params))
        except ConfigError as error:
            _fail(error)
        from flows.pipeline import pipeline

        with _reported():
            state = pipeline(params_path=str(params), root=".", return_state=True)
            state.result()  # a failed run raises its error here
    layout = Layout()
    typer.echo(f"\n{run_headline(read_json(layout.stage_metrics('report')))}")
    if (url := run_url(state.state_details.flow_run_id)) is not None:
        typer.echo(f"Prefect run: {url}")
    typer.echo("Where things are:")
    for what, path in (("report", layout.report), ("metrics", layout.metrics), ("data", layout.root / "data"),
                       ("checkpoints", layout.root / "models"),
                       ("quality gates' Data Docs", layout.quality_reports / DOCS / "index.html")):
        typer.echo(f"  {what:<22} {path.resolve()}")


@app.command()
def compare(profile: ProfileOption = None, params: ParamsOption = Path("params.yaml"), force: ForceOption = False,
            seed: Annotated[list[int] | None, typer.Option(help="run only these seeds (repeatable); several "
                                                           "processes can share the seeds out")] = None,
            skip_shared: Annotated[bool, typer.Option(help="use the shared stages' outputs as they are")] = False,
            report_only: Annotated[bool, typer.Option(help="run nothing; report the computed runs")] = False) -> None:
    """Compare the method with every baseline (several seeds each), cross-model transfer and a size curve; writes
    reports/compare/<profile>/<domain>/report.md. Runs already computed are reused."""
    _in_a_project(params)
    with _locked(shared=(skip_shared or report_only) and profile is None):
        from acqsynth.comparison.arms import main_arms

        try:
            _select_profile(params, profile, force)
            config = load_config(params)
            main_arms(config)  # a misspelt arm stops here, before any work
        except ConfigError as error:
            _fail(error)
        from flows.compare import compare as compare_flow

        with _reported():
            result = compare_flow(params_path=str(params), root=".", seeds=seed, run_shared=not skip_shared,
                                  report_only=report_only)
    typer.echo(f"\n{result['runs']} runs ({result['reused']} reused, {result['failed']} failed); report: "
               f"{result['report']}")
    typer.echo(f"domain {config.domain}; arms live in experiments/{config.domain}/")


STAGE_NAMES = [stage.name for stage in PIPELINE]


@app.command()
def stage(name: Annotated[str, typer.Argument(help=" | ".join(STAGE_NAMES))],
          params: ParamsOption = Path("params.yaml")) -> None:
    """Run one stage as its own Prefect flow run (what each dvc.yaml stage calls)."""
    if name not in STAGE_NAMES:
        _fail(ValueError(unknown_name("stage", name, STAGE_NAMES)))
    try:
        config = load_config(params)
    except ConfigError as error:
        _fail(error)
    if differences := differences_from_profile(config):  # one line: dvc repro runs this once per stage
        typer.secho(f"{params}: {len(differences)} value(s) differ from profile {config.profile} (`acqsynth check` "
                    "lists them)", fg=typer.colors.YELLOW)
    from flows.pipeline import stage as stage_flow

    with _locked(), _reported():
        stage_flow(name=name, params_path=str(params), root=".")


@app.command()
def export(out: Annotated[Path | None, typer.Option(help="the dataset directory (default: "
                                                      "exports/<domain>-seed<seed>)")] = None,
           repo_id: Annotated[str | None, typer.Option(help="also push it to this Hub dataset repo (org/name; "
                                                            "needs a token)")] = None,
           params: ParamsOption = Path("params.yaml")) -> None:
    """Write the run's data as a Hugging Face dataset with a dataset card: `datasets.load_dataset(<dir>, "selected")`
    opens the fine-tuning set; the card's YAML says how it was made."""
    from acqsynth.export import push_to_hub, write_dataset

    try:
        config = load_config(params)
    except ConfigError as error:
        _fail(error)
    out = out or Path("exports") / f"{config.domain}-seed{config.seed}"
    with _locked(shared=True), _reported():
        written = write_dataset(config, Layout(), out)
    typer.echo(f"wrote {out}: {', '.join(written)}")
    if repo_id is not None:
        with _reported():
            typer.echo(f"pushed to {push_to_hub(out, repo_id)}")


@app.command("dvc-yaml")
def dvc_yaml(check: Annotated[bool, typer.Option(help="only say whether dvc.yaml is up to date (exit 1 if not)")]
             = False, path: Annotated[Path, typer.Option(help="where to write")] = Path("dvc.yaml")) -> None:
    """Render dvc.yaml from the stage declarations (acqsynth/stages.py), with each stage's code deps taken from
    the import graph."""
    from acqsynth import artifacts
    from acqsynth.dvc_yaml import render

    text = render()
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            typer.secho(f"{path}: not the rendering of the stage declarations; run `acqsynth dvc-yaml`",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1)
        typer.echo(f"{path}: up to date")
        return
    artifacts.atomic_write_text(path, text)
    typer.echo(f"wrote {path}")


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
