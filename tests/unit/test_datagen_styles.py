from __future__ import annotations

import pytest
from click.testing import CliRunner

from stylewrap.cli import cli
from stylewrap.datagen.styles import builtin_styles, load_style
from stylewrap.errors import ConfigError, InputError

GOOD = """\
name: pirate
title: 海盗腔
style_guide: 像海盗一样说话。
markers: [啊哈, 伙计]
rules: [问题不变]
examples:
  - user: 你好
    plain: 你好。
    styled: 啊哈，你好，伙计！
"""


def test_builtins_are_valid_and_complete():
    assert {"translational", "classical"} <= set(builtin_styles())
    for name in builtin_styles():
        preset = load_style(name)
        assert preset.markers and preset.rules and preset.examples
        rendered = preset.render("stylize_system")
        assert preset.title in rendered and all(rule in rendered for rule in preset.rules)


def test_classical_preset_carries_its_markers():
    preset = load_style("classical")
    assert {"嗟乎", "呜呼"} <= set(preset.markers)


def test_user_preset_file_works_like_a_builtin(tmp_path):
    path = tmp_path / "pirate.yaml"
    path.write_text(GOOD + "prompts:\n  topics: '列出 {{ count }} 个海上话题 {{ avoid | length }}'\n", encoding="utf-8")
    preset = load_style(str(path))
    assert preset.name == "pirate"
    assert preset.render("topics", count=3, avoid=[]) == "列出 3 个海上话题 0"
    assert preset.prompts_hash() != load_style("translational").prompts_hash()


@pytest.mark.parametrize(
    "text, where",
    [
        (GOOD.replace("markers: [啊哈, 伙计]", "markers: []"), ":4: markers"),
        (GOOD + "colour: red\n", ":10: colour: unknown key"),
        (GOOD.replace("    styled: 啊哈，你好，伙计！\n", ""), ":6: examples.0.styled: field required"),
        (GOOD + "prompts:\n  stylise: x\n", ":10: prompts"),
        (GOOD + "prompts:\n  topics: '{% if %}'\n", ":11: prompts.topics: template error"),
    ],
)
def test_malformed_preset_names_line_and_field(tmp_path, text, where):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_style(str(path))
    assert str(err.value).startswith(str(path)) and where in str(err.value)


def test_unknown_preset_lists_builtins():
    with pytest.raises(InputError, match="built-in: classical, translational"):
        load_style("no-such-style")


def test_styles_cli():
    runner = CliRunner()
    listed = runner.invoke(cli, ["styles", "list"])
    assert listed.exit_code == 0 and "translational" in listed.output and "古文翻译腔" in listed.output
    shown = runner.invoke(cli, ["styles", "show", "translational", "--prompts"])
    assert shown.exit_code == 0 and "我敢发誓" in shown.output and "stylize system prompt" in shown.output
    missing = runner.invoke(cli, ["styles", "show", "nope"])
    assert missing.exit_code == 2 and "unknown style '" in missing.output
