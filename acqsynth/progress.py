"""Progress of long work: a rich bar on the console, and a line at every quarter on the `acqsynth.progress` logger,
which the Prefect layer sends to the run's logs (tasks/prefect_env.py) so the UI shows how far a long stage is.

Every long loop of the project reports through `progress`; trainers (TRL's GRPO, SFT) through `train`,
which replaces the library's own bar and its printed dict of every logged step.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOGGER = logging.getLogger("acqsynth.progress")
MILESTONES = 4  # log lines per loop: at 25%, 50%, 75% and 100%


class Progress:
    """Handed out by `progress`: `advance(n, note)` moves the bar; `note` (e.g. the current loss) is shown and
    logged."""

    def __init__(self, bar: Any, task: Any, description: str, total: int) -> None:
        self._bar, self._task, self._description, self._total = bar, task, description, total
        self._done, self._logged = 0, 0

    def advance(self, n: int = 1, note: str = "") -> None:
        self._done += n
        label = f"{self._description} {note}".rstrip()
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=label)
        if self._total and self._done * MILESTONES >= (self._logged + 1) * self._total:
            self._logged = min(MILESTONES, self._done * MILESTONES // self._total)
            LOGGER.info("%s: %d/%d (%d%%)%s", self._description, min(self._done, self._total), self._total,
                        100 * min(self._done, self._total) // self._total, f", {note}" if note else "")


@contextmanager
def progress(description: str | None, total: int) -> Iterator[Progress]:
    """A bar for `total` units of work, logged at each quarter; with no description, neither (quiet work)."""
    if description is None:
        yield Progress(None, None, "", 0)
        return
    from rich.progress import Progress as Bar

    with Bar() as bar:
        yield Progress(bar, bar.add_task(description, total=total), description, total)


def train(trainer: Any, description: str, **train_kwargs: Any) -> Any:
    """`trainer.train(**train_kwargs)` (a transformers or TRL trainer), its progress shown as `progress` shows it (a
    bar, and a logged line at each quarter with the last loss and, for GRPO, reward) in place of the trainer's tqdm
    bar and its printed dict of every logged step."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    class TrainerProgress(TrainerCallback):
        def __init__(self) -> None:
            self.context = None
            self.progress: Progress | None = None
            self.step = 0
            self.note = ""

        def on_train_begin(self, args, state, control, **kwargs):
            self.context = progress(description, state.max_steps)
            self.progress = self.context.__enter__()
            self.progress.advance(state.global_step)  # a resumed run starts where it was
            self.step = state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            # A value may be missing or None (GRPO's reward when no rollout of a step had one).
            shown = [(key, (logs or {}).get(key)) for key in ("loss", "reward")]
            self.note = ", ".join(f"{key} {float(value):.3g}" for key, value in shown
                                  if isinstance(value, (int, float)) and not isinstance(value, bool))

        def on_step_end(self, args, state, control, **kwargs):
            if self.progress is not None:
                self.progress.advance(state.global_step - self.step, self.note)
                self.step = state.global_step

        def close(self) -> None:
            if self.context is not None:
                self.context.__exit__(None, None, None)
                self.context = self.progress = None

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    callback = TrainerProgress()
    trainer.add_callback(callback)
    try:
        return trainer.train(**train_kwargs)
    finally:
        callback.close()  # also when training fails, so the bar does not hold the console
