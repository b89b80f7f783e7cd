"""Trials: each one a normal rlkit run (`rlkit.training.train`) in a Tune trial actor.

A trial actor's output (the run's lines, Tune's messages inside it, a traceback) goes to
`<sweep dir>/logs/<trial>.log`; the terminal shows the sweep's own lines.

The run trains in a thread of the trial actor; its logger hands Tune the mean of each
metric since its previous report, every `log_every` environment steps (Tune's time
attribute: environment steps), so ASHA can stop weak trials. A stopped trial ends as an
interrupted run does (final checkpoint, W&B closed). A retried or resumed trial
continues from its run's newest checkpoint.
"""

from __future__ import annotations

import queue
import shutil
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from rlkit import checkpoint
from rlkit.config import load_yaml
from rlkit.logger import METRICS_FILE, read_metrics
from rlkit.output import LOGS_DIR, send_output_to
from rlkit.rundir import CONFIG_FILE
from rlkit.sweep.spec import TIME_ATTR, Sweep, describe


def trial_name(trial: Any) -> str:
    """Tune's trial name and dir name: trial-<index>, stable across retries and --resume."""
    return f"trial-{str(trial.trial_id).rsplit('_', 1)[-1]}"


def run_trial(
    sweep: Sweep,
    values: dict[str, Any],
    name: str,
    *,
    report: Any,
    stop: threading.Event,
) -> None:
    """Train one trial in `<sweep>/trials/<name>`, or continue its run from the newest
    checkpoint (a retry, a resumed sweep)."""
    from rlkit.training import train

    run_dir = sweep.trials_dir / name
    if run_dir.exists():
        found = checkpoint.list_checkpoints(run_dir / "checkpoints")
        if found:
            steps = int(load_yaml(run_dir / CONFIG_FILE)["steps"])
            if int(checkpoint.load(found[-1])["step"]) >= steps:  # finished before --resume
                metrics = _final_metrics(run_dir)
                report(int(metrics.pop(TIME_ATTR)), metrics)
                return
            train(  # the sweep's own trial: its env is the sweep file's, checked already
                None,
                resume=run_dir,
                trust_modules=True,
                wandb=sweep.wandb,
                progress=False,
                report=report,
                stop=stop,
            )
            return
        shutil.rmtree(run_dir)  # an attempt that failed before its first checkpoint
    settings, hparams = sweep.trial_run(values, name)
    train(sweep.agent, hparams=hparams, report=report, stop=stop, **settings)


def _final_metrics(run_dir: Path) -> dict[str, float]:
    """Means over the last `log_every` steps of a finished run's metrics (for --resume)."""
    rows = read_metrics(run_dir / METRICS_FILE)
    config = load_yaml(run_dir / CONFIG_FILE)
    last = max((row["step"] for row in rows), default=0)
    window = [row for row in rows if row["step"] > last - int(config["log_every"])]
    names = {key for row in window for key in row if key.startswith(("episode/", "eval/"))}
    metrics = {}
    for metric in names:
        values = [row[metric] for row in window if metric in row]
        metrics[metric] = sum(values) / len(values)
    metrics[TIME_ATTR] = float(last)
    return metrics


def trainable(sweep: Sweep) -> Any:
    """The Tune trainable: a class whose `step()` hands Tune the run's next report.

    The run itself trains in a thread of the trial actor; `cleanup()` (ASHA stopping the
    trial, or the sweep ending) asks it to stop and waits, so the run ends normally.
    """
    from ray import tune

    class SweepTrial(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            # everything this trial's process prints goes to its log file, not the terminal
            send_output_to(sweep.directory / LOGS_DIR / f"{self.trial_name}.log")
            self._reports: queue.Queue[tuple[str, Any]] = queue.Queue()
            self._stop = threading.Event()
            self._last: dict[str, float] = {}
            self._thread = threading.Thread(
                target=self._train, args=(dict(config),), name="rlkit-trial", daemon=True
            )
            self._thread.start()

        def _train(self, values: dict[str, Any]) -> None:
            def report(step: int, metrics: dict[str, float]) -> None:
                self._reports.put(("report", {**metrics, TIME_ATTR: step}))

            try:
                run_trial(sweep, values, self.trial_name, report=report, stop=self._stop)
                self._reports.put(("done", None))
            except BaseException as error:  # handed to Tune, which retries the trial
                traceback.print_exc()  # into the trial's log
                self._reports.put(("error", error))

        def step(self) -> dict[str, Any]:
            while True:
                kind, payload = self._reports.get()
                if kind == "error":
                    raise payload
                if kind == "done":
                    return {**self._last, "done": True}
                if sweep.spec.metric in payload:
                    self._last = payload
                    return dict(payload)

        def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
            # the run keeps its own checkpoints; a restored trial resumes from them
            return {"run_dir": str(sweep.trials_dir / self.trial_name)}

        def load_checkpoint(self, checkpoint: dict[str, Any] | None) -> None:
            pass

        def cleanup(self) -> None:
            self._stop.set()
            self._thread.join(timeout=300)

    resources = {"cpu": sweep.spec.resources.cpu, "gpu": sweep.spec.resources.gpu}
    return tune.with_resources(SweepTrial, resources)


def progress_callback(logs: Path | None = None) -> Any:
    """One line per trial event on stderr; a failure's line names its error and log file."""
    from ray import tune

    def failure(trial: Any) -> str:
        log = "" if logs is None else f"; log: {logs / f'{trial}.log'}"
        return f"{_error_line(trial)}{log}"

    class Progress(tune.Callback):
        """One line per trial event on stderr (Tune's own output is off)."""

        def on_trial_start(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(f"rlkit: {trial} started: {describe(trial.config)}", file=sys.stderr)

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(
                f"rlkit: {trial} ended at step {trial.last_result.get(TIME_ATTR)}", file=sys.stderr
            )

        def on_trial_recover(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(f"rlkit: {trial} failed ({failure(trial)}); retrying", file=sys.stderr)

        def on_trial_error(
            self, iteration: int, trials: list[Any], trial: Any, **info: Any
        ) -> None:
            print(f"rlkit: {trial} failed: {failure(trial)}", file=sys.stderr)

    return Progress()


def _error_line(trial: Any) -> str:
    """The last line of a failed trial's traceback (`Error: message`), as Tune saved it."""
    try:
        lines = Path(trial.error_file).read_text().strip().splitlines()
    except (OSError, TypeError):
        return "see its log"
    text = lines[-1].strip() if lines else "see its log"
    return text if len(text) <= 300 else text[:297] + "..."
