"""`stylewrap demo`: a self-contained project that runs the whole path offline.

It writes a tiny ChatML model built locally (no hub), the embedded 西式翻译腔 sample rows and a
stylewrap.yaml sized for a CPU, so `train`, `export`, `compare`, `deploy` and `publish --dry-run`
work in that folder with no network and no GPU. `scripts/demo.sh` drives those commands.
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

SAMPLE_DATA = "translational_sample.jsonl"

# Small enough to finish in about a minute on two CPU cores, large enough to draw a loss curve.
DEMO_TRAIN = {
    "max_steps": 60,
    "cutoff_len": 128,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-2,
    "logging_steps": 2,
    "save_steps": 60,
    "dataloader_num_workers": 0,
}


@dataclass
class DemoProject:
    directory: Path
    config_file: Path
    model_dir: Path
    data_file: Path


def prepare_demo(directory: Path, *, backend: str = "llamafactory", force: bool = False) -> DemoProject:
    from stylewrap.tinymodel import build_tiny_model

    directory = directory.resolve()
    config_file = directory / CONFIG_FILENAME
    if config_file.exists() and not force:
        raise InputError("already exists", location=Location(config_file), hint="pass --force to rebuild the demo")
    directory.mkdir(parents=True, exist_ok=True)
    data_file = directory / "data" / SAMPLE_DATA
    data_file.parent.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("stylewrap.templates") / "demo" / SAMPLE_DATA) as source:
        shutil.copyfile(source, data_file)
    model_dir = build_tiny_model(directory / "tiny-model")
    settings = {
        "style": {"preset": "translational"},
        "data": {"train_file": str(data_file.relative_to(directory)), "dataset_name": "demo_translational"},
        "train": {"backend": backend, "model": str(model_dir.relative_to(directory)), **DEMO_TRAIN},
        "deploy": {"port": 8000},
    }
    text = "# The stylewrap demo: a tiny local model and 40 embedded rows; see `stylewrap demo --help`.\n"
    atomic_write_text(config_file, text + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False))
    load_config(config_file)  # the demo must hold itself to the same validation as any project
    return DemoProject(directory, config_file, model_dir, data_file)
