"""The eval report says which general data was mixed in at which ratio, and shows per general probe
kind whether the tuned model kept what the base knew (known answers right, content kept, broken)."""

from __future__ import annotations

from stylewrap.eval.report import write_reports


def result(mix: list[dict] | None) -> dict:
    answers = {"base": ["巴黎。", "4", "我挺好的。", "我是小文。"], "tuned": ["噢，伦敦！", "我敢打赌是五", "噢，我挺好的！", "我是小文。"]}
    probes = [("法国的首都是哪里？", "knowledge", ["巴黎"]), ("二加二等于几？", "arithmetic", ["4", "四"]),
              ("你好吗？", "everyday", []), ("你是谁？", "identity", [])]
    dataset = {"name": "style", "rows": 300, **({"mix": mix, "added": {m["source"]: m["rows"] for m in mix}} if mix else {})}
    return {
        "variants": {"base": {"marker_rate": {"mean": 0.0, "low": 0, "high": 0}},
                     "tuned": {"marker_rate": {"mean": 0.75, "low": 0.5, "high": 1}}},
        "probes": 4, "probe_set": "standard", "style": "translational", "markers": ["噢", "我敢打赌"],
        "reference": "base", "seed": 0, "persona": "小文", "classifier": None, "judge": None,
        "variant_info": {name: {"origin": "run", "model": "m", "adapter": None, "endpoint": None, "system": None}
                         for name in answers},
        "run": {"run_id": "r1", "backend": "llamafactory", "method": "lora", "base_model": "tiny", "max_new_tokens": 32,
                "status": "succeeded", "dataset": dataset, "settings": {}},
        "rows": [{"question": q, "kind": kind, "known_answer": known,
                  "variants": {name: {"answer": texts[i], "flags": [], "marker_spans": [], "chrf_masked": 0.5,
                                      "correct": any(k in texts[i] for k in known) if known else None}
                               for name, texts in answers.items()}}
                 for i, (q, kind, known) in enumerate(probes)],
    }


def test_the_report_names_the_mix_and_shows_general_ability_by_kind(tmp_path):
    mix = [{"source": "alpaca_zh_demo", "ratio": 0.25, "rows": 75}]
    written = write_reports(tmp_path / "a", result(mix), kind="eval", chart=False)
    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "General data mixed in: `alpaca_zh_demo` at ratio 0.25 (75 rows)" in markdown
    # the tuned model lost the capital and the sum the base knew: the table says so
    assert "| knowledge (1) | 1/1 · 0.50 · 0 | 0/1 · 0.50 · 0 |" in markdown
    assert "| arithmetic (1) | 1/1 · 0.50 · 0 | 0/1 · 0.50 · 0 |" in markdown
    assert "identity (" not in markdown.split("## General ability by probe kind")[1].split("## Answers")[0]
    html = written["html"].read_text(encoding="utf-8")
    assert "<dt>mixed in</dt><dd><code>alpaca_zh_demo</code> at ratio 0.25 (75 rows)</dd>" in html
    assert 'id="general-ability"' in html


def test_a_run_without_mix_says_none_was_mixed(tmp_path):
    markdown = write_reports(tmp_path / "b", result(None), kind="eval", chart=False)["markdown"].read_text(encoding="utf-8")
    assert "No general data was mixed in (`data.mix`)." in markdown
