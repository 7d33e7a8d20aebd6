"""`stylewrap export RUN --to ollama` on a real ms-swift run of the tiny model, through the installed
console script: the Modelfile carries the run's template, the system prompt it trained with (here
stylewrap's default: the session's run sets none) and stop tokens, the check
agrees on every path; a merged model whose chat_template was changed is then refused by publish."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stylewrap.backends import ollama, templatecheck
from stylewrap.config import DEFAULT_SYSTEM_PROMPT as SYSTEM

STYLEWRAP = str(Path(sys.executable).with_name("stylewrap"))


def test_ollama_export_then_a_drifted_template_is_refused(swift_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(swift_run, run)      # the session's run stays as other tests expect it
    exported = subprocess.run([STYLEWRAP, "export", str(run), "--to", "ollama"], capture_output=True, text=True,
                              cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "template check: train, merged, ollama agree" in exported.stdout
    modelfile = ollama.parse_modelfile((run / "ollama" / "Modelfile").read_text(encoding="utf-8"))
    assert modelfile["system"] == SYSTEM and "<|im_end|>" in modelfile["stops"]
    rendered = ollama.render_template(modelfile["template"], SYSTEM, templatecheck.conversation(SYSTEM)[1:3])
    assert rendered == f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n你是谁？<|im_end|>\n" \
                       "<|im_start|>assistant\n在下乃一介书生。<|im_end|>\n"

    # negative control: the merged model's chat_template loses the newline after <|im_end|>
    jinja = run / "merged" / "chat_template.jinja"
    jinja.write_text(jinja.read_text(encoding="utf-8").replace("'<|im_end|>' + '\\n'", "'<|im_end|>'"), encoding="utf-8")
    refused = subprocess.run([STYLEWRAP, "publish", "model", str(run), "--repo", "someone/tiny-style"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "publish refused" in refused.stderr and "merged differs from train" in refused.stderr
    assert "Traceback" not in refused.stderr
