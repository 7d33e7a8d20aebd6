"""What a long datagen run shows while it works: one rich progress bar per stage with rate,
ETA, errors, tokens and cost so far. `SilentProgress` is the same interface, showing nothing."""

from __future__ import annotations

from typing import Callable


class SilentProgress:
    def start(self, stage: str, total: int, done: int) -> None:
        pass

    def advance(self, stage: str, *, failed: bool) -> None:
        pass

    def stop(self) -> None:
        pass


class RichProgress(SilentProgress):
    def __init__(self, usage: Callable[[], tuple[int, int, float]], console=None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.usage = usage
        self.bar = Progress(
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7} it/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("[red]{task.fields[errors]} err[/] {task.fields[tokens]} tok ${task.fields[cost]}"),
            transient=False,
            console=console,
        )
        self.tasks: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.bar.start()

    def _fields(self, stage: str) -> dict:
        tokens_in, tokens_out, cost = self.usage()
        task = self.bar.tasks[self.tasks[stage]] if stage in self.tasks else None
        speed = task.speed if task is not None and task.speed else 0.0
        return {"errors": self.errors.get(stage, 0), "tokens": f"{tokens_in + tokens_out:,}", "cost": f"{cost:.4f}", "rate": f"{speed:.1f}"}

    def start(self, stage: str, total: int, done: int) -> None:
        self.errors[stage] = 0
        self.tasks[stage] = self.bar.add_task(stage, total=total, completed=done, **self._fields(stage))

    def advance(self, stage: str, *, failed: bool) -> None:
        if failed:
            self.errors[stage] += 1
        self.bar.update(self.tasks[stage], advance=1, **self._fields(stage))

    def stop(self) -> None:
        self.bar.stop()
