"""The template check through the backends' own template code on the tiny model (LLaMA-Factory):
a server given the wrong template is refused, and non-CoT style data on a hybrid-thinking
template gains no <think> block once stylewrap picks the backend's no-thinking twin."""

from __future__ import annotations

import pytest

from stylewrap.backends import templatecheck
from stylewrap.backends.base import get_backend
from stylewrap.errors import InputError


@pytest.fixture(scope="module")
def llamafactory():
    backend = get_backend("llamafactory")
    if backend.python() is None:
        pytest.fail("the llamafactory environment is not installed")
    return backend


def test_a_server_with_the_wrong_template_is_refused(llamafactory, tiny_model, tmp_path):
    report = templatecheck.check_run(tmp_path, llamafactory, base_model=str(tiny_model), template="qwen",
                                     model_type="qwen2", system=None, serve=(llamafactory, "llama3"))
    (mismatch,) = report.mismatches
    assert mismatch.path == "serve" and mismatch.part == "prompt" and mismatch.token_index == 0
    assert "<|im_start|>" in mismatch.expected
    assert (tmp_path / templatecheck.REPORT_FILE).is_file()
    with pytest.raises(InputError, match="deploy refused"):
        templatecheck.require_consistent(report, allow=False, action="deploy")
    templatecheck.require_consistent(report, allow=True, action="deploy")


@pytest.mark.parametrize("backend_name", ["llamafactory", "swift"])
def test_non_cot_answers_gain_no_think_block(backend_name, tiny_model, tmp_path):
    from stylewrap.backends.train import thinking_template

    backend = get_backend(backend_name)

    def trained(template):
        rendering, _ = templatecheck.backend_rendering(
            backend, "train", model=str(tiny_model), template=template, model_type="qwen2", options={},
            messages=templatecheck.conversation())
        return rendering.full["trained_text"]

    style_rows = tmp_path / "style.jsonl"
    style_rows.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "噢"}]}\n')
    chosen = thinking_template(backend, "qwen3", style_rows)
    # negative control: both backends' hybrid qwen3 template trains an empty <think></think> into every answer
    assert "<think>" in trained("qwen3")
    assert chosen != "qwen3" and "<think>" not in trained(chosen)


@pytest.mark.parametrize("backend_name", ["llamafactory", "swift"])
def test_loss_on_last_turn_trains_only_the_last_answer(backend_name, tiny_model):
    """`train.loss_on: last_turn` as each backend's own row encoding applies the rendered key."""
    from stylewrap.backends.flags import translate

    backend = get_backend(backend_name)
    sections = translate(backend_name, "train", backend.tables["train"], {"loss_on": "last_turn"})
    options = {key: value for section in sections.values() for key, value in section.items()}
    rendering, _ = templatecheck.backend_rendering(backend, "train", model=str(tiny_model), template="qwen",
                                                   model_type="qwen2", options=options,
                                                   messages=templatecheck.conversation())
    (_, first_answer), (_, last_answer) = templatecheck.TURNS
    assert last_answer in rendering.full["trained_text"]
    assert first_answer not in rendering.full["trained_text"]
    # the earlier answer is still in the row, as context
    assert first_answer in rendering.full["text"]
