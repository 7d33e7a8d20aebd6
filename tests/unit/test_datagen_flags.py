"""`stylewrap datagen` flags become config overrides that keep each value's type."""

from __future__ import annotations

from stylewrap.config import load_config
from stylewrap.datagen.entry import flag_overrides


def test_flags_override_their_keys_and_strings_stay_strings():
    flags = {"model": "on", "seed": 7, "json_mode": False, "price_in": 0.5, "fmt": "1e5", "temperature": None}
    config = load_config(None, flag_overrides(flags), environ={}, search=False)
    datagen = config.datagen
    assert (datagen.teacher_model, datagen.seed, datagen.json_mode, datagen.price_input_per_1k) == ("on", 7, False, 0.5)
    assert datagen.output_format == "1e5"
    assert datagen.temperature == load_config(None, environ={}, search=False).datagen.temperature  # not given: untouched


def test_a_named_flag_beats_set():
    config = load_config(None, ["datagen.concurrency=4", *flag_overrides({"concurrency": 16})], environ={}, search=False)
    assert config.datagen.concurrency == 16
