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
