from __future__ import annotations

import pytest
from click.testing import CliRunner

from stylewrap.cli import cli

pytestmark = pytest.mark.integration


def test_doctor_passes_on_the_installed_backend_envs():
    """The envs scripts/install_backends.sh installed import, match their pins and answer."""
    result = CliRunner().invoke(cli, ["backend", "doctor"])
    assert result.exit_code == 0, result.output
    assert "llamafactory: ok" in result.output and "swift: ok" in result.output


def test_doctor_says_each_check_as_it_starts_then_the_next_step(tmp_path):
    """The installed console script: 16-20 s of checks were a blank screen."""
    from console import run_stylewrap

    result = run_stylewrap("backend", "doctor", "swift", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    # each check named as it starts, before the verdict (stderr: the verdict and next step are stdout)
    assert "swift: importing torch" in result.stderr and "swift: running `swift sft --help` …" in result.stderr, \
        result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == "next: stylewrap train --backend swift"
