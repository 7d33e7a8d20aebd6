"""Does preference tuning strengthen the style without losing content? SFT only, SFT + DPO, ORPO only.

On the seed's own data (TslDial: stage-2 plain answers, stage-3 styled rewrites), paired by
`stylewrap data pairs`: the first TRAIN pairs teach (SFT on their styled side, DPO/ORPO on the
pairs), the last PROBES questions are held out. Each run answers the held-out questions through
`stylewrap compare` (its backend, greedy) and the answers are scored with `stylewrap eval`'s own
metrics, each with a 95% bootstrap interval over the probes:

- marker_rate: share of answers with one of the style's markers (噢, 天啊, 亲爱的 ...);
- p_style: the eval classifier (character n-grams, trained on the TRAIN pairs' plain vs styled sides);
- chrf_masked: chrF against the held-out question's plain answer, markers removed from both (does
  the answer still say what a plain answer says).

The seed's own plain and styled answers to the held-out questions are scored too, as the floor and
the ceiling of each number.

    .venv/bin/python bench/preference_style.py [--backend llamafactory] [--sft-steps 300] [--pref-steps 150]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "data" / "tsldial"
STYLEWRAP = str(Path(sys.executable).with_name("stylewrap"))


def stylewrap(project: Path, *args: str) -> str:
    # one thread per backend process: on a shared, loaded machine torch's default (all cores) thrashes
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([STYLEWRAP, *args], cwd=project, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"stylewrap {' '.join(args)} failed:\n{result.stdout}\n{result.stderr[-3000:]}")
    return result.stdout


def newest_run(project: Path) -> Path:
    return max((project / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def train(project: Path, *args: str) -> tuple[Path, float]:
    started = time.perf_counter()
    stylewrap(project, "train", "--quiet", *args)
    return newest_run(project), time.perf_counter() - started


def answers(project: Path, run_dir: Path, max_new_tokens: int) -> list[str]:
    stylewrap(project, "compare", str(run_dir), "--probes", "probes.jsonl", "--max-new-tokens", str(max_new_tokens))
    report = max((run_dir / "compare").glob("*/report.json"), key=lambda p: p.stat().st_mtime)
    return [row["tuned"] for row in json.loads(report.read_text(encoding="utf-8"))["rows"]]


def eval_modules(ref: str) -> tuple[str, dict]:
    """`stylewrap eval`'s scoring modules (metrics, bootstrap, classifier) as the `eval` branch has
    them, loaded from git: this branch does not carry the eval feature, the numbers must be its.
    (commit, {name: module}); needs the eval extra's scikit-learn, sacrebleu and numpy."""
    import importlib.util
    import tempfile

    commit = subprocess.run(["git", "rev-parse", ref], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    folder = Path(tempfile.mkdtemp(prefix="eval-modules-"))
    modules = {}
    for name in ("metrics", "bootstrap", "classifier"):
        source = subprocess.run(["git", "show", f"{commit}:stylewrap/eval/{name}.py"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"eval_{name}", folder / f"{name}.py")
        modules[name] = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(modules[name])
    return commit, modules


def score(texts: list[str], plain: list[str], markers: tuple[str, ...], classifier, seed: int, modules: dict) -> dict:
    interval = modules["bootstrap"].interval
    chrf_masked, marker_counts = modules["metrics"].chrf_masked, modules["metrics"].marker_counts

    has_marker = [1.0 if sum(marker_counts(text, markers)) else 0.0 for text in texts]
    return {"marker_rate": interval(has_marker, seed=seed),
            "p_style": interval(classifier.p_style(texts), seed=seed),
            "chrf_masked": interval([chrf_masked(t, p, markers) for t, p in zip(texts, plain)], seed=seed),
            "chars": sum(map(len, texts)) / len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="llamafactory")
    parser.add_argument("--work", type=Path, default=Path("/tmp/stylewrap-bench-preference"))
    parser.add_argument("--train", type=int, default=2000, help="pairs to learn from")
    parser.add_argument("--probes", type=int, default=60, help="held-out questions")
    parser.add_argument("--sft-steps", type=int, default=300)
    parser.add_argument("--pref-steps", type=int, default=150)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--model", type=Path, default=None, help="default: the tiny model, built once")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-ref", default="eval", help="git ref of the eval branch whose metrics score the answers")
    args = parser.parse_args()

    from stylewrap.adapters import read_records
    from stylewrap.datagen.styles import load_style

    project = args.work
    project.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from stylewrap.tinymodel import build_tiny_model

        model = build_tiny_model(project / "tiny-model")
    stylewrap(project, "data", "pairs", "--chosen", str(SEED / "3_TranslationalDialogues.jsonl"),
              "--rejected", str(SEED / "2_Dialogues.jsonl"), "-o", "all_pairs.jsonl")
    pairs = list(read_records(project / "all_pairs.jsonl"))
    taught = pairs[: args.train]
    # held out: the last distinct questions of the file that no taught pair asks (the seed repeats itself)
    seen = {p.messages[0]["content"] for p in taught}
    held_out = []
    for pair in reversed(pairs[args.train:]):
        if pair.messages[0]["content"] not in seen and len(held_out) < args.probes:
            seen.add(pair.messages[0]["content"])
            held_out.append(pair)
    with (project / "pairs.jsonl").open("w", encoding="utf-8") as handle:
        for pair in taught:
            handle.write(json.dumps({"question": pair.messages[0]["content"], "chosen": pair.messages[1]["content"],
                                     "rejected": pair.meta["rejected_response"]}, ensure_ascii=False) + "\n")
    with (project / "styled.jsonl").open("w", encoding="utf-8") as handle:
        for pair in taught:
            handle.write(json.dumps({"问": pair.messages[0]["content"], "答": pair.messages[1]["content"]},
                                    ensure_ascii=False) + "\n")
    with (project / "probes.jsonl").open("w", encoding="utf-8") as handle:
        for pair in held_out:
            handle.write(json.dumps({"question": pair.messages[0]["content"]}, ensure_ascii=False) + "\n")
    common = {"model": str(model), "template": "qwen", "backend": args.backend, "method": "full", "cutoff_len": 128,
              "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "learning_rate": 1e-3,
              "lr_scheduler_type": "constant", "warmup_ratio": 0.0, "logging_steps": 10, "save_steps": 100_000,
              "dataloader_num_workers": 0, "dtype": "fp32", "seed": args.seed}
    config = {"data": {"train_file": "styled.jsonl", "pairs_file": "pairs.jsonl"}, "train": common}
    (project / "stylewrap.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    (project / "stylewrap.yaml").chmod(0o644)

    # the runs' answers are kept: scoring again (another metric, another seed) does not train again
    answers_file = project / "answers.json"
    if not answers_file.is_file():
        sft, sft_s = train(project, "--set", f"train.max_steps={args.sft_steps}")
        dpo, dpo_s = train(project, "--method", "dpo", "--from-run", str(sft), "--set", f"train.max_steps={args.pref_steps}",
                           "--set", "train.learning_rate=1e-4")
        orpo, orpo_s = train(project, "--method", "orpo", "--set", f"train.max_steps={args.sft_steps + args.pref_steps}")
        made = {f"SFT only ({args.sft_steps} steps)": (sft, sft_s),
                f"SFT + DPO ({args.sft_steps} + {args.pref_steps} steps)": (dpo, dpo_s),
                f"ORPO only ({args.sft_steps + args.pref_steps} steps)": (orpo, orpo_s)}
        answers_file.write_text(json.dumps({name: {"run_dir": str(run_dir), "train_seconds": round(seconds, 1),
                                                   "answers": answers(project, run_dir, args.max_new_tokens)}
                                            for name, (run_dir, seconds) in made.items()}, ensure_ascii=False, indent=1),
                                encoding="utf-8")
    made = json.loads(answers_file.read_text(encoding="utf-8"))

    commit, modules = eval_modules(args.eval_ref)
    train_style_classifier = modules["classifier"].train_style_classifier
    style = load_style("translational")
    markers = tuple(style.markers)
    classifier = train_style_classifier([(p.meta["rejected_response"], p.messages[1]["content"]) for p in taught],
                                        source="bench taught pairs", seed=args.seed)
    plain = [p.meta["rejected_response"] for p in held_out]
    rows = {"seed's plain answers (floor)": (plain, None),
            "seed's styled answers (ceiling)": ([p.messages[1]["content"] for p in held_out], None)}
    rows.update({name: (run["answers"], run) for name, run in made.items()})
    results = {}
    for name, (texts, run) in rows.items():
        results[name] = score(texts, plain, markers, classifier, args.seed, modules)
        if run is not None:
            info = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
            results[name].update(train_seconds=run["train_seconds"], final_loss=info["metrics"].get("final_loss"),
                                 final_rewards_margins=info["metrics"].get("final_rewards_margins"), example=texts[0][:80])
    (project / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")

    def cell(value: dict | None) -> str:
        return "-" if value is None else f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"

    print(f"probes: {len(held_out)} held-out questions; scored with the eval branch's metrics at {commit[:10]}; "
          f"p_style classifier held-out AUC {classifier.auc:.3f}")
    print("| | marker_rate | p_style | chrf_masked (vs plain answer) | train s | final reward margin |")
    print("|---|---|---|---|---|---|")
    for name, result in results.items():
        margin = result.get("final_rewards_margins")
        print(f"| {name} | {cell(result['marker_rate'])} | {cell(result['p_style'])} | {cell(result['chrf_masked'])} | "
              f"{result.get('train_seconds', '-')} | {'-' if margin is None else f'{margin:.3f}'} |")
    for name, result in results.items():
        if "example" in result:
            print(f"{name}: {result['example']!r}")


if __name__ == "__main__":
    main()
