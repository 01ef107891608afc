"""Progress of long stages with an estimated time to completion, for the command line.

Library code never prints; it reports its progress to a callable it is given:

* :class:`compot.trainer.Trainer` calls ``progress(info)`` after every evaluation
  with a dict (keys ``stage``, ``n_stages``, ``name``, ``evaluation``,
  ``max_evaluations``, ``loss``, ``best_loss``);
* the design loop (candidates), the NVT sanity check (steps) and the FIM
  analysis (spectra) call ``progress(task, done, total, note)``: ``done`` of
  ``total`` units of the task named ``task`` are finished.

:class:`ProgressBars` is such a callable (and :meth:`ProgressBars.trainer` the
trainer's). On a terminal it draws one tqdm bar per task (elapsed time, ETA,
rate, and the note); a finished task's bar stays on screen. Written to a file or
a pipe (a log), it writes plain lines instead, which a log keeps readable: the
first step of a task, then at most one line per ``interval`` seconds, and the
last step, each with the same elapsed time, ETA and rate.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

__all__ = ["ProgressBars"]

#: The line of a task in a log: "stage 2/5 n1 search: 12/30 [00:14<00:21,  1.2 s/it] loss …".
_LINE = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]{postfix}"


class ProgressBars:
    """Progress of one task at a time on ``stream``, with an ETA.

    Parameters
    ----------
    stream : text stream, default ``sys.stderr``
    interval : float, default 10
        Seconds between two lines of the same task when ``stream`` is not a
        terminal (the first and the last step are always written).
    tty : bool, optional
        Draw bars (True) or write lines (False); default ``stream.isatty()``.
    out : text stream, default ``sys.stdout``
        Where :meth:`message` writes its lines (results, not progress).
    """

    def __init__(self, stream=None, interval: float = 10.0, tty: bool | None = None, out=None):
        self.stream = sys.stderr if stream is None else stream
        self.out = sys.stdout if out is None else out
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self._task = None
        self._bar = None
        self._t0 = 0.0
        self._n0 = 0
        self._last = -float("inf")

    def __call__(self, task: str, done: int, total: int | None, note: str = "") -> None:
        """``done`` of ``total`` units of ``task`` finished (a new ``task`` ends the previous one)."""
        now = time.perf_counter()
        if task != self._task:
            self._start(task, done, total, now)
        if self.tty:
            self._bar.total = total
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(done - self._bar.n)
            return
        if now == self._t0 or (total is not None and done >= total) or now - self._last >= self.interval:
            self._last = now
            line = tqdm.format_meter(done, total, now - self._t0, prefix=task, bar_format=_LINE, unit="step",
                                     initial=self._n0, postfix=note or None)
            self.stream.write(line + "\n")
            self.stream.flush()

    def trainer(self, info: dict) -> None:
        """The progress callable of :class:`compot.trainer.Trainer` (one task per stage)."""
        task = f"stage {info['stage']}/{info['n_stages']} {info['name']}"
        note = f"loss {info['loss']:.5g}, best {info['best_loss']:.5g} eV²/row"
        self(task, info["evaluation"], info["max_evaluations"], note)

    def message(self, line: str) -> None:
        """Write one line of text to ``out``, above the bar on a terminal."""
        if self.tty and self._bar is not None:
            self._bar.write(line, file=self.out)
        else:
            self.out.write(line + "\n")
            self.out.flush()

    def close(self) -> None:
        """End the current task (its bar stays on screen)."""
        if self._bar is not None:
            self._bar.close()
        self._bar = None
        self._task = None

    def _start(self, task: str, done: int, total: int | None, now: float) -> None:
        self.close()
        self._task = task
        self._t0 = now
        self._n0 = done      # the rate counts from the first report (a resumed task starts there)
        self._last = -float("inf")
        if self.tty:
            self._bar = tqdm(total=total, initial=self._n0, desc=task, file=self.stream, unit="step",
                             dynamic_ncols=True, leave=True)

    def __enter__(self) -> "ProgressBars":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
