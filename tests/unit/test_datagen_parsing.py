from __future__ import annotations

import pytest

from stylewrap.datagen.parsing import ReplyParseError, normalize_text, parse_reply


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"问": "你好", "答": "嗨"}', {"问": "你好", "答": "嗨"}),
        ('好的，以下是结果：\n```json\n{"问": "你好", "答": "嗨，\\"朋友\\""}\n```\n希望有帮助', {"问": "你好", "答": '嗨，"朋友"'}),
        ("{'问': '你好', '答': 'It\\'s ok', 'n': None, 'ok': True}", {"问": "你好", "答": "It's ok", "n": None, "ok": True}),
        ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ("｛“问”：“他说“你好”了”，“答”：“好”｝", {"问": "他说“你好”了", "答": "好"}),
        ('Sure! {not json} and then {"ok": 1.5e1}', {"ok": 15.0}),
        ('{"emoji": "\\ud83d\\ude00", "tab": "a\\tb"}', {"emoji": "😀", "tab": "a\tb"}),
        ('{dialogue: [{user: "q", assistant: "a"}]}', {"dialogue": [{"user": "q", "assistant": "a"}]}),
    ],
)
def test_recovers_the_object(reply, expected):
    assert parse_reply(reply) == expected


def test_array_when_asked():
    assert parse_reply('话题如下：["天气", "电影"]', list) == ["天气", "电影"]


@pytest.mark.parametrize("reply", ["", "   ", "抱歉，我不能完成这个请求。", '{"a": "unterminated', "{'a': 1"])
def test_no_object_is_an_error(reply):
    with pytest.raises(ReplyParseError):
        parse_reply(reply)


def test_never_evaluates_code(tmp_path):
    marker = tmp_path / "pwned"
    reply = f"{{'a': __import__('pathlib').Path({str(marker)!r}).touch()}}"
    with pytest.raises(ReplyParseError):
        parse_reply(reply)
    assert not marker.exists()


def test_normalized_questions_match_across_punctuation_width_and_case():
    assert normalize_text("你有宠物吗？") == normalize_text(" 你有宠物吗?") == normalize_text("你有 宠物 吗 ！")
    assert normalize_text("Hello, World") == normalize_text("ＨＥＬＬＯ world")
    assert normalize_text("你有宠物吗") != normalize_text("你有猫吗")
