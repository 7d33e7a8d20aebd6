"""`stylewrap data ...` on the real TslDial files."""

from __future__ import annotations

import json

from click.testing import CliRunner

from stylewrap.adapters import read_records
from stylewrap.cli import cli


def _invoke(*args: str):
    result = CliRunner().invoke(cli, ["data", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def test_convert_tsldial_to_sharegpt_keeps_every_conversation(shared_data, tmp_path):
    source = shared_data / "tsldial/TslDial.json"
    out = tmp_path / "tsl_sharegpt.json"
    result = _invoke("convert", source, "--to", "sharegpt", "-o", out)
    assert "wrote 11743 rows (sharegpt)" in result.output
    rows = json.loads(out.read_text(encoding="utf-8"))
    original = json.loads(source.read_text(encoding="utf-8"))
    assert [r["conversations"][0]["value"] for r in rows] == [o["input"] for o in original]
    assert [r["conversations"][1]["value"] for r in rows] == [o["output"] for o in original]
    assert {r["conversations"][0]["from"] for r in rows} == {"human"}


def test_stats_counts_the_repeated_questions_of_stage_two(shared_data, tmp_path):
    report = tmp_path / "stats.html"
    result = _invoke("stats", shared_data / "tsldial/2_Dialogues.jsonl", "--json", "--html", report)
    numbers = json.loads(result.output)
    assert numbers["rows"] == 12000 and numbers["turns"] == 12000
    # the data README: 7,493 questions are repeats
    assert numbers["duplicates"]["prompt"] == 7493
    assert numbers["roles"]["user"]["messages"] == 12000
    assert sum(numbers["length_histogram_chars"].values()) == 12000
    html = report.read_text(encoding="utf-8")
    assert "<style>" in html and "<b>12000</b>rows" in html and '<img class="chart"' in html
    assert "data:image/png;base64,iVBOR" in html   # the PNG is inside the page: one file to send


def test_every_bar_label_of_the_stats_chart_is_inside_the_picture(shared_data):
    from stylewrap.adapters.stats import dataset_stats, histogram_figure

    stats = dataset_stats(shared_data / "tsldial/2_Dialogues.jsonl")
    figure = histogram_figure(stats)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    labels = figure.axes[0].texts
    assert sorted(int(text.get_text()) for text in labels) == sorted(count for _, count in stats.histogram_rows())
    plot_area = figure.axes[0].get_window_extent(renderer)
    for text in labels:   # the tallest bar's label was drawn above the top edge of the old chart
        box = text.get_window_extent(renderer)
        assert box.y1 <= plot_area.y1 and box.y0 >= plot_area.y0, text.get_text()


def test_stats_prints_a_table_and_a_histogram(shared_data):
    result = _invoke("stats", shared_data / "llamafactory/glaive_toolcall_zh_demo.json")
    assert "300 rows" in result.output
    assert "function_call" in result.output and "observation" in result.output
    assert "#" in result.output


def test_dedup_on_prompts_leaves_one_row_per_question(shared_data, tmp_path):
    out = tmp_path / "unique.jsonl"
    result = _invoke("dedup", shared_data / "tsldial/2_Dialogues.jsonl", "-o", out, "--on", "prompt")
    assert "kept 4507 of 12000 rows (7493 duplicates)" in result.output
    questions = [r.messages[0]["content"] for r in read_records(out)]
    assert len(questions) == len(set(questions)) == 4507


def test_dedup_normalized_catches_more_than_exact(shared_data, tmp_path):
    exact = _invoke("dedup", shared_data / "tsldial/2_Dialogues.jsonl", "-o", tmp_path / "a.jsonl").output
    normalized = _invoke("dedup", shared_data / "tsldial/2_Dialogues.jsonl", "-o", tmp_path / "b.jsonl", "--normalized").output
    assert "(274 duplicates)" in exact and "(300 duplicates)" in normalized


def test_split_is_seeded_exact_and_disjoint(shared_data, tmp_path):
    source = shared_data / "tsldial/TslDial.json"
    _invoke("split", source, "--train", tmp_path / "train.json", "--val", tmp_path / "val.jsonl", "--val-size", "0.1", "--seed", "7")
    train = list(read_records(tmp_path / "train.json"))
    val = list(read_records(tmp_path / "val.jsonl"))
    assert len(val) == 1174 and len(train) + len(val) == 11743
    assert sorted(map(repr, train + val)) == sorted(map(repr, read_records(source)))
    _invoke("split", source, "--train", tmp_path / "t2.json", "--val", tmp_path / "v2.jsonl", "--val-size", "0.1", "--seed", "7")
    assert (tmp_path / "v2.jsonl").read_bytes() == (tmp_path / "val.jsonl").read_bytes()


def test_sample_is_seeded_and_in_file_order(shared_data, tmp_path):
    source = shared_data / "tsldial/TslDial.json"
    _invoke("sample", source, "-n", "50", "-o", tmp_path / "a.jsonl", "--seed", "3", "--to", "messages")
    _invoke("sample", source, "-n", "50", "-o", tmp_path / "b.jsonl", "--seed", "3", "--to", "messages")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    picked = list(read_records(tmp_path / "a.jsonl"))
    remaining = iter(read_records(source))
    assert len(picked) == 50
    assert all(any(r == p for r in remaining) for p in picked)  # a subsequence: file order kept


def test_formats_lists_the_registry():
    output = _invoke("formats").output
    for name in ("alpaca", "sharegpt", "messages", "swift", "qa"):
        assert name in output


def test_convert_refuses_to_overwrite_its_input(shared_data, tmp_path):
    source = tmp_path / "t.jsonl"
    source.write_bytes((shared_data / "tsldial/3_TranslationalDialogues.jsonl").read_bytes())
    result = CliRunner().invoke(cli, ["data", "convert", str(source), "--to", "qa", "-o", str(source)])
    assert result.exit_code == 2 and "overwrite the input" in result.output


def test_stats_counts_tokens_per_role_with_a_real_tokenizer(shared_data, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    source = shared_data / "llamafactory/identity.json"
    records = list(read_records(source))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = [m["content"] for r in records for m in r.messages]
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    numbers = json.loads(_invoke("stats", source, "--json", "--tokenizer", tmp_path).output)
    for role, index in (("user", 0), ("assistant", 1)):
        expected = sum(len(tokenizer.encode(r.messages[index]["content"], add_special_tokens=False).ids) for r in records)
        assert numbers["roles"][role]["tokens"] == expected > numbers["roles"][role]["messages"]


def test_custom_sharegpt_role_tags(tmp_path):
    source = tmp_path / "tags.jsonl"
    row = {"conversations": [{"from": "me", "value": "你好"}, {"from": "bot", "value": "噢，老伙计！"}]}
    source.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    failed = CliRunner().invoke(cli, ["data", "validate", str(source)])
    assert failed.exit_code == 2 and "unknown role 'me'" in failed.output
    tags = ["--tag", "user_tag=me", "--tag", "assistant_tag=bot"]
    assert CliRunner().invoke(cli, ["data", "validate", str(source), *tags]).exit_code == 0
    _invoke("convert", source, "--to", "messages", "-o", tmp_path / "m.jsonl", *tags)
    assert next(read_records(tmp_path / "m.jsonl")).messages[1] == {"role": "assistant", "content": "噢，老伙计！"}


def test_open_shows_the_page_in_the_browser_or_says_where_it_is(shared_data, tmp_path):
    import os
    import subprocess
    import sys

    stylewrap = os.path.join(os.path.dirname(sys.executable), "stylewrap")
    page = tmp_path / "stats.html"
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {opened}\n")
    browser.chmod(0o755)
    args = [stylewrap, "data", "stats", str(shared_data / "tsldial/TslDial.json"), "--html", str(page), "--open"]
    shown = subprocess.run(args, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "DISPLAY": ":0", "BROWSER": str(browser)})
    assert shown.returncode == 0, shown.stderr
    assert opened.read_text().strip() == page.resolve().as_uri()   # webbrowser ran the user's $BROWSER
    headless = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    opened.unlink()
    skipped = subprocess.run(args, capture_output=True, text=True, timeout=120, env=headless)
    assert skipped.returncode == 0 and f"no browser to open it here (no display); open {page.resolve().as_uri()}" in skipped.stderr
    assert not opened.exists()
