"""The run's report (eval/compare report.html), laid out in headless Chromium: it opens with the
run's facts and its loss curve, then the headline; the `#` column stays narrow; empty, repeated
and garbled answers are flagged where the reader looks; style markers are highlighted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from chromium import open_chromium

from stylewrap.eval.report import write_reports

pytestmark = pytest.mark.integration



def interval(mean: float) -> dict:
    return {"mean": mean, "low": max(mean - 0.1, 0), "high": min(mean + 0.1, 1)}


def draw_loss_curve(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3))
    axes.plot([1, 2, 3], [2.0, 1.5, 1.2])
    figure.savefig(path)
    pyplot.close(figure)
    return path


@pytest.fixture
def report(tmp_path) -> Path:
    answers = {"base": ["巴黎。", "", "好好好好好好好好好好好好好好好好好好好好好好好好好好好好"],
               "tuned": ["噢，亲爱的，是巴黎！", "我敢打赌，是三只。", "\ufffd\ufffd\ufffd\ufffd"]}
    flags = {"": ["empty"], "好好好好好好好好好好好好好好好好好好好好好好好好好好好好": ["repeated"], "\ufffd\ufffd\ufffd\ufffd": ["garbled"]}
    questions = ["法国的首都是哪里？", "树上有几只鸟？", "你好吗？"]
    result = {
        "variants": {"base": {"j": interval(0.2), "marker_rate": interval(0.0)},
                     "tuned": {"j": interval(0.6), "marker_rate": interval(0.7)}},
        "probes": 3, "probe_set": "translational", "style": "translational", "markers": ["噢", "我敢打赌"],
        "reference": "base", "seed": 0, "persona": None, "classifier": None, "judge": None,
        "variant_info": {name: {"origin": "run", "model": "m", "adapter": None, "endpoint": None, "system": None}
                         for name in answers},
        "run": {"run_id": "20261201-101500-swift-lora", "backend": "swift", "method": "lora", "base_model": "/work/models/qwen/tiny-model",
                "max_new_tokens": 32, "status": "succeeded", "steps": 120, "first_loss": 2.0, "final_loss": 1.2,
                "eval_loss": 1.3, "runtime_s": 42.0, "dataset": {"name": "style", "rows": 300},
                "settings": {"learning_rate": 1e-4}, "loss_png": str(draw_loss_curve(tmp_path / "run-loss.png"))},
        "rows": [{"question": q, "kind": "everyday", "known_answer": [],
                  "variants": {name: {"answer": texts[i], "flags": flags.get(texts[i], []),
                                      "marker_spans": [[0, len(m)] for m in ["噢", "我敢打赌"] if texts[i].startswith(m)]}
                               for name, texts in answers.items()}}
                 for i, q in enumerate(questions)],
    }
    return write_reports(tmp_path / "report", result, kind="compare", chart=False)["html"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from open_chromium(tmp_path_factory, "1280,1400")


def test_the_report_opens_with_the_run_then_reads_well(report, browser, tmp_path):
    browser.get(report.as_uri())
    find = lambda css: browser.find_elements("css selector", css)  # noqa: E731
    run, headline, answers = find("#run")[0], find(".headline")[0], find("table.answers")[0]
    # the order a reader meets: the run's facts and loss curve, the headline, then the answers
    assert run.location["y"] < headline.location["y"] < answers.location["y"]
    assert "20261201-101500-swift-lora" in run.text and "2.0000 → 1.2000" in run.text and "300 rows" in run.text
    # a local base model by its folder's name (its whole path on hover), the finish time readable
    assert "swift, lora on tiny-model" in run.text and "/work/models" not in run.text
    assert run.find_element("css selector", "dd code[title]").get_attribute("title") == "/work/models/qwen/tiny-model"
    curve = run.find_element("css selector", "img")
    assert browser.execute_script("return arguments[0].naturalWidth", curve) > 0   # loss.png beside the report
    assert (report.parent / "loss.png").is_file()
    # the # column is narrow: the answers get the width
    number, question = answers.find_elements("css selector", "tr:first-child th")[:2]
    assert number.size["width"] < 0.05 * answers.size["width"], number.size
    # every broken answer carries its flag, inside its own cell
    flagged = {cell.find_element("css selector", ".flag").text for cell in find("td.flagged")}
    assert flagged == {"empty", "repeated", "garbled"}
    assert [m.text for m in answers.find_elements("css selector", "mark")] == ["噢", "我敢打赌"]
    folder = Path(os.environ.get("STYLEWRAP_TEST_ARTIFACTS") or tmp_path)
    browser.save_screenshot(str(folder / "report.png"))
