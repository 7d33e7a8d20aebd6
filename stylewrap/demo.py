"""`stylewrap demo`: a self-contained project that runs the whole path offline.

It writes the tiny ChatML model built locally (no hub; it speaks plain everyday Chinese), the
demo's 西式翻译腔 rows with their plain twins (both from `stylewrap.demogrammar`, shipped in
templates/demo/), the held-out probe questions, and a stylewrap.yaml sized for a CPU whose `eval:`
section measures on those probes, so `stylewrap run` (and `train`, `export`, `eval`, `deploy`,
`publish --dry-run`) works in that folder with no network and no GPU, and the tuned model answers
in the style where the base answers plainly. `stylewrap demo` runs it; `scripts/demo.sh` chats after.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from stylewrap.config import CONFIG_FILENAME, load_config
from stylewrap.errors import InputError, Location
from stylewrap.fsutil import atomic_write_text

SAMPLE_DATA = "translational_sample.jsonl"   # styled rows {"问", "答"}: what the demo trains on
PLAIN_DATA = "translational_plain.jsonl"     # their plain twins, row for row
PROBES = "everyday.jsonl"                    # held-out questions (templates/probes/everyday.jsonl)
DEMO_ROWS = 300

# The run's eval stage answers the held-out everyday probes, long enough for a whole styled answer.
DEMO_EVAL = {"probes": f"data/probes_{PROBES}", "max_new_tokens": 64}

# Teaches the tiny model the style in about a minute on two CPU cores on either backend.
DEMO_TRAIN = {
    "max_steps": 40,
    "cutoff_len": 128,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 3e-3,
    "lora_rank": 8,
    "logging_steps": 2,
    "save_steps": 40,
    "dataloader_num_workers": 0,
}


@dataclass
class DemoProject:
    directory: Path
    config_file: Path
    model_dir: Path
    data_file: Path


def shipped_files() -> dict[str, str]:
    """The demo's data files as `stylewrap.demogrammar` makes them: templates/ holds exactly these
    (a unit test checks), so eval and the docs can point at them without running the generator."""
    from stylewrap import demogrammar

    rows = demogrammar.demo_rows(DEMO_ROWS)
    return {
        f"demo/{SAMPLE_DATA}": demogrammar.jsonl([{"问": row["问"], "答": row["答"]} for row in rows]),
        f"demo/{PLAIN_DATA}": demogrammar.jsonl([{"问": row["问"], "答": row["plain"]} for row in rows]),
        f"probes/{PROBES}": demogrammar.jsonl(demogrammar.probe_rows()),
    }


def write_shipped_files(templates: Path = Path(__file__).resolve().parents[1] / "templates") -> None:
    """Regenerate the shipped files in a source checkout after editing the grammar or the rules."""
    for relative, text in shipped_files().items():
        atomic_write_text(templates / relative, text)


def prepare_demo(directory: Path, *, backend: str = "llamafactory", force: bool = False, on_build_line=None) -> DemoProject:
    from stylewrap.tinymodel import build_tiny_model

    directory = directory.resolve()
    config_file = directory / CONFIG_FILENAME
    if config_file.exists() and not force:
        raise InputError("already exists", location=Location(config_file), hint="pass --force to rebuild the demo")
    directory.mkdir(parents=True, exist_ok=True)
    data_file = directory / "data" / SAMPLE_DATA
    data_file.parent.mkdir(parents=True, exist_ok=True)
    shipped = resources.files("stylewrap.templates")
    for source, target in ((shipped / "demo" / SAMPLE_DATA, data_file), (shipped / "demo" / PLAIN_DATA, data_file.with_name(PLAIN_DATA)),
                           (shipped / "probes" / PROBES, data_file.with_name(f"probes_{PROBES}"))):
        with resources.as_file(source) as path:
            shutil.copyfile(path, target)
    model_dir = build_tiny_model(directory / "tiny-model", on_line=on_build_line)
    settings = {
        "style": {"preset": "translational"},
        "data": {"train_file": str(data_file.relative_to(directory)), "dataset_name": "demo_translational"},
        "train": {"backend": backend, "model": str(model_dir.relative_to(directory)), **DEMO_TRAIN},
        "eval": DEMO_EVAL,
        "deploy": {"port": 8000},
    }
    text = (f"# The stylewrap demo: a tiny local model and {DEMO_ROWS} embedded 西式翻译腔 rows; see `stylewrap demo --help`.\n"
            f"# eval: the held-out questions (data/probes_{PROBES}); the rows' plain twins: data/{PLAIN_DATA}.\n")
    atomic_write_text(config_file, text + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False))
    load_config(config_file)  # the demo must hold itself to the same validation as any project
    return DemoProject(directory, config_file, model_dir, data_file)
