"""Presets: a preset's `config` goes above stylewrap.yaml and below --set; its `backends` block goes
on top for the backend the run uses."""

from __future__ import annotations

from stylewrap.backends.presets import list_presets, load_train_config

PRESET = """\
description: two backends batching differently
config:
  train:
    dtype: bf16
    per_device_train_batch_size: 16
backends:
  swift:
    train:
      per_device_train_batch_size: 80
      extra_args:
        group_by_length: true
"""


def test_backend_block_applies_to_the_backend_used_and_user_flags_win(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text(PRESET, encoding="utf-8")
    swift = load_train_config(None, ["train.backend=llamafactory"], str(preset), backend="swift")
    assert swift.train.per_device_train_batch_size == 80 and swift.train.extra_args == {"group_by_length": True}
    # the backend named in the config picks the block when no --backend is given
    from_config = load_train_config(None, ["train.backend=swift"], str(preset))
    assert from_config.train.per_device_train_batch_size == 80
    mine = load_train_config(None, ["train.per_device_train_batch_size=8", "train.extra_args.note=1"],
                             str(preset), backend="llamafactory")
    assert mine.train.per_device_train_batch_size == 8 and mine.train.dtype == "bf16"
    assert mine.train.extra_args == {"note": 1}


def test_seed_presets_keep_their_own_settings_on_any_hardware():
    assert {"seed-translational", "seed-classical"} <= set(list_presets())
    for name in ("seed-translational", "seed-classical"):
        assert load_train_config(None, [], name).train.auto is False
