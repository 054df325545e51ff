"""Where a trainer's logged curves go besides metrics/ (`report_to`, a setting of each trainer, as in TRL's configs):
nowhere else, TensorBoard or DVCLive files under logs/<stage>/, or Weights & Biases (set up by its own WANDB_*
variables). The trainers' own `report_to` stays "none": the callback is built here, so its directory is the stage's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acqsynth.config import ReportTo


def add_curve_logger(trainer: Any, report_to: ReportTo, log_dir: Path, resume: bool) -> None:
    """Give `trainer` the callback that sends its logged values to `report_to`; `resume` appends to the curves a
    crashed run left."""
    if report_to == "none":
        return
    from transformers.integrations import DVCLiveCallback, TensorBoardCallback, WandbCallback

    log_dir.mkdir(parents=True, exist_ok=True)
    if report_to == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        callback = TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(log_dir)))
    elif report_to == "dvclive":
        from dvclive import Live

        # One dvc.yaml for every trainer's curves, in logs/, where `dvc plots show` finds it (in the curves' own
        # directory DVCLive 3.49 would repeat its entries at each write); `acqsynth run` saves the experiment.
        callback = DVCLiveCallback(live=Live(dir=str(log_dir), resume=resume,
                                             dvcyaml=str(log_dir.parent / "dvc.yaml"), save_dvc_exp=False))
    else:
        callback = WandbCallback()
    trainer.add_callback(callback)
