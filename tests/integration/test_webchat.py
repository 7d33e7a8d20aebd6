"""The web chat page (`stylewrap app`) in headless Chromium, against real backend servers serving
the tiny model (ms-swift: tuned + base side by side; LLaMA-Factory: the tuned model alone), and
against an unreachable and an empty server. Screenshots go to $STYLEWRAP_TEST_ARTIFACTS.

The side-by-side case is the one that broke: ms-swift answers one request at a time, and the page
asked both models at once without a length cap, so the column whose request came second got
nothing while the other ran to the model's length limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chromium import open_chromium

from fakeopenai import FakeServer
from ports import free_port
from stylewrap.serve import servers

pytestmark = pytest.mark.integration

MAKE_LORA = """
import sys, torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
torch.manual_seed(1)
base = AutoModelForCausalLM.from_pretrained(sys.argv[1])
config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
get_peft_model(base, config).save_pretrained(sys.argv[2])
"""
QUESTION = "我听说在遥远的东方？"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(servers.STATE_DIR_VAR, str(tmp_path_factory.mktemp("servers")))
        yield


@pytest.fixture(scope="module")
def lora_adapter(tiny_model, tmp_path_factory) -> Path:
    from stylewrap.backends.envs import env_python

    out = tmp_path_factory.mktemp("lora") / "adapter"
    python = env_python("swift") or env_python("llamafactory")
    subprocess.run([str(python), "-c", MAKE_LORA, str(tiny_model), str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module", params=["swift", "llamafactory"])
def deployed(request, state_dir, tiny_model, lora_adapter):
    """A detached server of one backend, with no server-side length cap (the page must bring one)."""
    port = free_port()
    argv = [sys.executable, "-m", "stylewrap", "deploy", "--backend", request.param, "--model", str(tiny_model),
            "--adapter", str(lora_adapter), "--template", "qwen", "--port", str(port), "--detach"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    record = servers.load_record(port)
    yield record
    servers.stop(record)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from open_chromium(tmp_path_factory, "1280,800")


def screenshot(browser, tmp_path_factory, name: str) -> None:
    folder = Path(os.environ.get("STYLEWRAP_TEST_ARTIFACTS") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / f"{name}.png"))
    print(f"screenshot: {folder / name}.png")


class Page:
    """`stylewrap app` (the installed console script) and the page it serves, open in the browser."""

    def __init__(self, browser, *args: str):
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser = browser
        self.app = subprocess.Popen([str(Path(sys.executable).parent / "stylewrap"), "app", "--port", str(free_port()),
                                     *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        first_line = self.app.stdout.readline()
        assert first_line.startswith("chat page on http://127.0.0.1:"), first_line + self.app.stdout.read()
        browser.get(first_line.split()[3])
        self.wait = WebDriverWait(browser, 300)
        self.wait.until(lambda d: d.find_element("tag name", "body").get_attribute("data-ready") == "true")

    def find(self, css: str):
        return self.browser.find_elements("css selector", css)

    def set_value(self, element_id: str, value: str) -> None:
        element = self.browser.find_element("id", element_id)
        element.clear()
        element.send_keys(value)

    def ask(self, text: str) -> list:
        before = len(self.find(".msg.assistant, .msg.error"))
        self.browser.find_element("id", "input").send_keys(text)
        self.browser.find_element("id", "send").click()
        return self.wait_answers(before)

    def wait_answers(self, before: int) -> list:
        self.wait.until(lambda d: len(self.find(".msg.assistant, .msg.error")) > before and all(
            e.get_attribute("data-done") for e in self.find(".msg.assistant, .msg.error")))
        return self.find(".msg.assistant, .msg.error")[before:]

    def headers(self) -> list[tuple[str, str]]:
        return [(c.find_element("css selector", ".role").text.lower(), c.get_attribute("data-model"))
                for c in self.find(".column")]

    def close(self) -> None:
        self.app.terminate()
        self.app.wait(timeout=30)


def test_page_answers_one_model_and_side_by_side(deployed, browser, tmp_path_factory):
    page = Page(browser)   # no --base-url: the one stylewrap server running, and its roles
    try:
        tuned = deployed.models[0]
        assert page.headers() == [("tuned", tuned)]
        assert {e.get_attribute("id") for e in page.find("#max-tokens, #temperature")} == {"max-tokens", "temperature"}
        page.set_value("max-tokens", "24")
        (reply,) = page.ask(QUESTION)
        first_reply = reply.text
        assert reply.get_attribute("data-done") == "true" and first_reply.strip(), first_reply
        screenshot(browser, tmp_path_factory, f"webchat-{deployed.backend}-one-model")
        if len(deployed.models) < 2:
            assert not page.find("#compare-label")[0].is_displayed()
            return
        page.browser.find_element("id", "compare").click()
        assert page.headers() == [("tuned", tuned), ("base", deployed.models[1])]
        # the conversation so far stays in the tuned column when side by side is switched on
        tuned_log = page.find(".column")[0]
        assert QUESTION in tuned_log.text and first_reply in tuned_log.text
        browser.find_element("id", "input").send_keys("你好")
        browser.find_element("id", "send").click()
        # while the tuned column streams, the base column says why it is still empty
        page.wait.until(lambda d: page.find(".column")[0].find_elements("css selector", ".msg.assistant[data-chunks]")[-1:]
                        and len(page.find(".column")[0].find_elements("css selector", ".msg.assistant")) == 2)
        base_reply = page.find(".column")[1].find_elements("css selector", ".msg.assistant")[-1]
        assert base_reply.get_attribute("data-chunks") or "waiting for" in base_reply.text, base_reply.text
        replies = page.wait_answers(1)
        assert [r.get_attribute("data-done") for r in replies] == ["true", "true"]
        # asked one after the other, tuned first: base's first piece comes after tuned finished
        tuned_reply, base_reply = replies
        assert int(tuned_reply.get_attribute("data-finished")) < int(base_reply.get_attribute("data-first-piece"))
        # every column got text (the broken page left the second one empty)
        assert all(int(r.get_attribute("data-chunks") or 0) >= 1 and r.text.strip() for r in replies), \
            [r.text for r in replies]
        screenshot(browser, tmp_path_factory, f"webchat-{deployed.backend}-side-by-side")
        page.browser.find_element("id", "compare").click()
        assert page.find(".column")[0].text.count(QUESTION) == 1 and "你好" in page.find(".column")[0].text
    finally:
        page.close()


def test_stop_ends_the_answer_and_the_next_one_comes(browser, state_dir, monkeypatch, tmp_path_factory):
    # a reply still streaming when Stop is clicked: the speaking tiny model ends its answers within a
    # few tokens, too soon to stop, so a scripted server streams 60 pieces 0.1 s apart
    fake = FakeServer()
    fake.script(models=["tuned"], reply=" ".join(["很长"] * 60), stream_interval=0.1)
    monkeypatch.setenv("STYLEWRAP_TEST_FAKE_KEY", "test-key")
    page = Page(browser, "--base-url", fake.base_url, "--model", "tuned", "--api-key-env", "STYLEWRAP_TEST_FAKE_KEY")
    try:
        browser.find_element("id", "input").send_keys("长一点")
        browser.find_element("id", "send").click()
        page.wait.until(lambda d: int(page.find(".msg.assistant")[-1].get_attribute("data-chunks") or 0) >= 2)
        assert not page.find("#send")[0].is_displayed()
        page.find("#stop")[0].click()
        page.wait.until(lambda d: page.find(".msg.assistant")[-1].get_attribute("data-done"))
        stopped = page.find(".msg.assistant")[-1]
        assert stopped.get_attribute("data-done") == "stopped" and "stopped" in stopped.text
        chunks_at_stop = int(stopped.get_attribute("data-chunks"))
        assert page.find("#send")[0].is_displayed()
        time.sleep(1)   # the abandoned stream would go on arriving now, were it still read
        (reply,) = page.ask("再来")
        assert reply.get_attribute("data-done") == "true"
        # nothing more reached the stopped reply
        assert int(page.find(".msg.assistant")[-2].get_attribute("data-chunks")) == chunks_at_stop
        screenshot(browser, tmp_path_factory, "webchat-stopped")
    finally:
        page.close()
        fake.stop()


def test_an_unreachable_server_is_said_plainly(browser, state_dir, tmp_path_factory):
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    page = Page(browser, "--base-url", nobody, "--model", "any")
    try:
        notice = page.find("#notice")[0]
        assert notice.is_displayed() and f"cannot reach the model server at {nobody}" in notice.text
        assert "stylewrap deploy status" in notice.text and not page.find("#send")[0].is_enabled()
        assert not page.find("#model")[0].is_displayed()   # no empty picker: there is nothing to pick
        screenshot(browser, tmp_path_factory, "webchat-unreachable")
    finally:
        page.close()


def test_a_server_with_no_model_is_said_plainly(browser, state_dir, monkeypatch):
    fake = FakeServer()
    fake.script(models=[])
    monkeypatch.setenv("STYLEWRAP_TEST_FAKE_KEY", "test-key")
    page = Page(browser, "--base-url", fake.base_url, "--model", "any", "--api-key-env", "STYLEWRAP_TEST_FAKE_KEY")
    try:
        notice = page.find("#notice")[0]
        assert notice.is_displayed() and "serves no model" in notice.text
    finally:
        page.close()
        fake.stop()


def test_an_answer_cut_at_max_tokens_says_so(browser, state_dir, monkeypatch, tmp_path_factory):
    # the server ends the reply with finish_reason "length": the answer stops mid-sentence
    fake = FakeServer()
    fake.script(models=["tuned"], reply="一个 很长 的 回答 还没", faults=["truncate"])
    monkeypatch.setenv("STYLEWRAP_TEST_FAKE_KEY", "test-key")
    page = Page(browser, "--base-url", fake.base_url, "--model", "tuned", "--api-key-env", "STYLEWRAP_TEST_FAKE_KEY")
    try:
        page.set_value("max-tokens", "5")
        (cut,) = page.ask("长一点")
        assert cut.get_attribute("data-finish") == "length" and "cut at max tokens (5)" in cut.text, cut.text
        page.set_value("max-tokens", "256")
        # the note stays with the answer when the page lays the conversation out again
        browser.execute_script("document.getElementById('model').dispatchEvent(new Event('change'))")
        assert "cut at max tokens (5)" in page.find(".msg.assistant")[0].text
        (whole,) = page.ask("再来")
        assert whole.get_attribute("data-finish") == "stop" and "cut at" not in whole.text, whole.text
        screenshot(browser, tmp_path_factory, "webchat-cut-at-max-tokens")
    finally:
        page.close()
        fake.stop()
