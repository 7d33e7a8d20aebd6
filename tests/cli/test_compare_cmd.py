"""`stylewrap compare` asks the probes of the project's style (the installed console script, --dry-run:
nothing runs): a translational project was once asked the classical probes."""

from __future__ import annotations

import pytest

from console import run_stylewrap
from runfixture import make_run_dir


@pytest.mark.parametrize("style", ["translational", "classical"])
def test_compare_asks_the_probes_of_the_projects_style(tmp_path, style):
    base = tmp_path / "base"
    base.mkdir()
    run_dir = make_run_dir(tmp_path, base_model=base, planted_secret="")
    (tmp_path / "stylewrap.yaml").write_text(f"style:\n  preset: {style}\n", encoding="utf-8")
    result = run_stylewrap("compare", run_dir.name, "--dry-run", cwd=tmp_path, env={"HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"probes: {style} (" in result.stdout and f"style: {style}" in result.stdout, result.stdout
