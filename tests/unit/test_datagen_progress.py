"""The datagen progress line, rendered by rich into a recording console."""

from __future__ import annotations

import io
import re

from rich.console import Console

from stylewrap.datagen.progress import RichProgress


def test_progress_line_shows_rate_eta_errors_tokens_and_cost():
    console = Console(record=True, file=io.StringIO(), width=200)
    progress = RichProgress(lambda: (1200, 345, 0.0123), console=console)
    progress.start("stylize", 10, 2)
    for failed in (False, True, False):
        progress.advance("stylize", failed=failed)
    progress.stop()
    [line] = [line for line in console.export_text().splitlines() if line.startswith("stylize")]
    match = re.search(r" 5/10 +(?P<rate>[\d.]+) it/s +\d:\d\d:\d\d ETA (?P<eta>\d+:\d\d:\d\d) (?P<errors>\d+) err (?P<tokens>[\d,]+) tok \$(?P<cost>[\d.]+)$", line)
    assert match, line
    assert float(match["rate"]) > 0 and match["errors"] == "1" and match["tokens"] == "1,545" and match["cost"] == "0.0123"


def test_each_stage_counts_its_own_errors():
    console = Console(record=True, file=io.StringIO(), width=200)
    progress = RichProgress(lambda: (0, 0, 0.0), console=console)
    progress.start("dialogues", 2, 0)
    progress.advance("dialogues", failed=True)
    progress.advance("dialogues", failed=True)
    progress.start("stylize", 2, 0)
    progress.advance("stylize", failed=False)
    progress.stop()
    rendered = {line.split()[0]: line for line in console.export_text().splitlines() if line.strip()}
    assert " 2 err " in rendered["dialogues"] and " 0 err " in rendered["stylize"]
