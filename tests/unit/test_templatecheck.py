"""The template check's comparison and the Ollama Modelfile, on a ChatML conversation as
LLaMA-Factory's `qwen` template renders it (the real probe output is checked in
tests/integration/test_template_check.py)."""

from __future__ import annotations

from stylewrap.backends import ollama, templatecheck
from stylewrap.backends.base import get_backend
from stylewrap.backends.flags import translate

MESSAGES = templatecheck.conversation()
CONTENTS = [m["content"] for m in MESSAGES]


def chatml(messages, generation_prompt=False) -> str:
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if generation_prompt else "")


def rendering(path, full_text, prompt_text) -> templatecheck.Rendering:
    return templatecheck.Rendering(path, "test", full={"text": full_text}, prompt={"text": prompt_text})


def write_modelfile(tmp_path, text) -> object:
    pieces = ollama.cut_pieces(text, CONTENTS)
    path = tmp_path / "Modelfile"
    path.write_text(ollama.modelfile_text("../merged", ollama.go_template(pieces), None, ["<|im_end|>"]), encoding="utf-8")
    return path


def test_modelfile_renders_the_training_conversation_back(tmp_path):
    modelfile = write_modelfile(tmp_path, chatml(MESSAGES))
    rendered = templatecheck.ollama_rendering(modelfile, MESSAGES)
    assert rendered.full["text"] == chatml(MESSAGES)
    assert rendered.prompt["text"] == chatml(MESSAGES[:-1], generation_prompt=True)
    train = rendering("train", chatml(MESSAGES), chatml(MESSAGES[:-1], True))
    assert templatecheck.compare(train, [rendered]) == []
    assert ollama.parse_modelfile(modelfile.read_text())["stops"] == ["<|im_end|>"]


def test_a_wrong_template_is_caught_at_its_first_token(tmp_path):
    # negative control: a Modelfile whose assistant turn opens with the wrong role tag
    modelfile = write_modelfile(tmp_path, chatml(MESSAGES).replace("im_start|>assistant", "im_start|>bot"))
    train = templatecheck.Rendering("train", "test", full={"text": chatml(MESSAGES),
                                                          "tokens": list(chatml(MESSAGES))})
    (mismatch,) = templatecheck.compare(train, [templatecheck.ollama_rendering(modelfile, MESSAGES)])
    assert mismatch.path == "ollama" and mismatch.part == "full"
    assert mismatch.expected == "a" and mismatch.found == "b"
    assert mismatch.context.endswith("<|im_start|>")


def test_token_ids_are_compared_where_both_paths_tokenized():
    ours = {"ids": [1, 2, 3], "tokens": ["<s>", "x", "</s>"], "text": "<s>x</s>"}
    theirs = {"ids": [1, 2, 4], "tokens": ["<s>", "x", "<eos>"], "text": "<s>x<eos>"}
    mismatch = templatecheck.first_difference(ours, theirs, "merged", "full")
    assert (mismatch.token_index, mismatch.expected, mismatch.found) == (2, "</s>", "<eos>")
    assert templatecheck.first_difference(ours, dict(ours), "merged", "full") is None


def test_stop_tokens_must_end_the_answer_where_training_did():
    train = rendering("train", chatml(MESSAGES), "")
    assert templatecheck.stop_mismatch(train, ["<|im_end|>"], "ollama") is None
    assert templatecheck.stop_mismatch(train, ["</s>"], "ollama").expected == "<|im_end|>"


def test_loss_on_and_report_to_rows():
    def train_keys(backend, **options):
        sections = translate(backend, "train", get_backend(backend).tables["train"], options)
        return {key: value for section in sections.values() for key, value in section.items()
                if key in ("mask_history", "loss_scale", "report_to", "use_swanlab", "swanlab_mode", "swanlab_logdir")}

    assert train_keys("llamafactory", loss_on="last_turn", report_to="swanlab") == {
        "mask_history": True, "report_to": "none", "use_swanlab": True, "swanlab_mode": "local", "swanlab_logdir": "swanlog"}
    assert train_keys("swift", loss_on="last_turn", report_to="swanlab") == {
        "loss_scale": "last_round", "report_to": "swanlab", "swanlab_mode": "local"}
    assert train_keys("swift", loss_on="all_turns", report_to="tensorboard") == {"report_to": "tensorboard"}
    assert train_keys("llamafactory", loss_on="all_turns", report_to="none") == {"report_to": "none"}


def test_a_tracker_missing_from_the_backend_env_is_refused_before_training(monkeypatch):
    import pytest

    from stylewrap.backends.train import check_tracker
    from stylewrap.errors import InputError

    swift = get_backend("swift")
    monkeypatch.setattr(type(swift), "installed", lambda self: {"torch": "2.6.0", "tensorboard": "2.20.0"})
    check_tracker(swift, "tensorboard")
    check_tracker(swift, "none")
    with pytest.raises(InputError, match="swanlab is not installed in the swift environment"):
        check_tracker(swift, "swanlab")


def test_hybrid_thinking_templates_switch_to_their_nothink_twin_only_for_non_cot_data(tmp_path):
    from stylewrap.backends.train import thinking_template

    plain, cot = tmp_path / "plain.jsonl", tmp_path / "cot.jsonl"
    plain.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "噢"}]}\n')
    cot.write_text('{"messages": [{"role": "user", "content": "hi"}, '
                   '{"role": "assistant", "content": "<think>想</think>噢"}]}\n')
    assert thinking_template(get_backend("llamafactory"), "qwen3", plain) == "qwen3_nothink"
    assert thinking_template(get_backend("swift"), "qwen3", plain) == "qwen3_nothinking"
    assert thinking_template(get_backend("swift"), "qwen3", cot) == "qwen3"
    assert thinking_template(get_backend("swift"), "qwen", plain) == "qwen"


def test_a_run_whose_base_model_is_not_here_is_reported_unchecked(tmp_path):
    base = tmp_path / "base"
    base.mkdir()       # a folder without tokenizer files, like a run copied from another machine
    report = templatecheck.check_run(tmp_path, get_backend("swift"), base_model=str(base), template="qwen",
                                     model_type="qwen2", system=None)
    assert report.ok and report.renderings == []
    assert report.lines()[0] == "template check: not run"
    assert "tokenizer is not on this machine" in report.lines()[1]


def test_the_modelfile_system_must_be_the_trained_one(tmp_path):
    trained_system = "你是一位说话带翻译腔的助手。"
    messages = templatecheck.conversation(trained_system)
    reference = templatecheck.Rendering("train", "test", full={"text": chatml(messages)},
                                        prompt={"text": chatml(messages[:-1], True)})
    pieces = ollama.cut_pieces(chatml(messages), [m["content"] for m in messages])

    def check(modelfile_system):
        modelfile = tmp_path / "Modelfile"
        modelfile.write_text(ollama.modelfile_text("../merged", ollama.go_template(pieces), modelfile_system,
                                                   ["<|im_end|>"]), encoding="utf-8")
        return templatecheck.check_run(tmp_path, get_backend("swift"), base_model="unused", template="qwen",
                                       model_type="qwen2", system=trained_system, modelfile=modelfile,
                                       trained=(reference, {}))

    assert check(trained_system).ok
    # negative control: the template's own default system prompt instead of the one trained with
    (mismatch,) = check("You are a helpful assistant.").mismatches
    assert (mismatch.path, mismatch.part, mismatch.found) == ("ollama", "system", "You are a helpful assistant.")
