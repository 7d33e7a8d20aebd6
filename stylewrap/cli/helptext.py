"""What `--help` shows beyond each command's own docstring and options: the commands grouped by
workflow stage on the top page, and an Examples block on every command (the way `gh` and `hf`
do). Kept as tables here, so one test can check every command has examples and a stage.

Plain data and Click only: `stylewrap --help` imports this and must stay fast.
"""

from __future__ import annotations

import click

# the top page's sections, in the order a project goes through them
STAGES: list[tuple[str, list[str]]] = [
    ("Start", ["init", "demo", "run", "config"]),
    ("Make the data", ["styles", "datagen", "data"]),
    ("Train", ["backend", "render", "train", "runs", "webui"]),
    ("Check the result", ["eval", "compare"]),
    ("Ship", ["export", "deploy", "publish"]),
    ("Talk to it", ["chat", "app"]),
]

EXAMPLES: dict[str, list[str]] = {
    "": ["stylewrap init my-style && cd my-style   # then set the keys marked REQUIRED",
         "stylewrap run                            # datagen -> data -> train -> eval -> deploy",
         "stylewrap demo                           # the whole path offline, on a tiny model"],
    "init": ["stylewrap init", "stylewrap init my-style --force"],
    "demo": ["stylewrap demo", "stylewrap demo /tmp/demo --backend swift --port 8010"],
    "run": ["stylewrap run", "stylewrap run --to train", "stylewrap run --from eval --dry-run",
            "stylewrap run --set train.learning_rate=1e-4"],
    "config": ["stylewrap config show", "stylewrap config validate --config other.yaml"],
    "config show": ["stylewrap config show", "stylewrap config show --set train.backend=swift"],
    "config validate": ["stylewrap config validate", "stylewrap config validate --config other.yaml"],
    "styles": ["stylewrap styles list", "stylewrap styles show translational"],
    "styles list": ["stylewrap styles list"],
    "styles show": ["stylewrap styles show translational", "stylewrap styles show classical --prompts"],
    "datagen": ["stylewrap datagen run --model qwen-plus", "stylewrap datagen stylize -i plain.jsonl --style classical"],
    "datagen run": ["stylewrap datagen run", "stylewrap datagen run --style classical --num-topics 50 --model qwen-plus"],
    "datagen topics": ["stylewrap datagen topics --num-topics 100"],
    "datagen dialogues": ["stylewrap datagen dialogues", "stylewrap datagen dialogues --topics-file topics.txt"],
    "datagen stylize": ["stylewrap datagen stylize", "stylewrap datagen stylize -i plain.jsonl --style classical"],
    "datagen build": ["stylewrap datagen build", "stylewrap datagen build --format alpaca --train-file TslDial.json"],
    "data": ["stylewrap data validate train.jsonl", "stylewrap data stats train.jsonl --html stats.html"],
    "data validate": ["stylewrap data validate train.jsonl", "stylewrap data validate raw.json --drop-invalid"],
    "data convert": ["stylewrap data convert TslDial.json --to sharegpt -o train.jsonl"],
    "data stats": ["stylewrap data stats train.jsonl", "stylewrap data stats train.jsonl --html stats.html --open",
                   "stylewrap data stats train.jsonl --json"],
    "data formats": ["stylewrap data formats"],
    "data pairs": ["stylewrap data pairs --chosen stylized.jsonl --rejected dialogues.jsonl",
                   "stylewrap data pairs --chosen styled.jsonl --rejected plain.jsonl --to ranking -o pairs.jsonl"],
    "data register": ["stylewrap data register train.jsonl --backend swift --dataset-dir data --name style"],
    "data dedup": ["stylewrap data dedup train.jsonl -o train.dedup.jsonl --normalized"],
    "data sample": ["stylewrap data sample train.jsonl -n 100 -o sample.jsonl"],
    "data split": ["stylewrap data split train.jsonl --train train.part.jsonl --val val.jsonl --val-size 0.05"],
    "backend": ["stylewrap backend list", "stylewrap backend install swift", "stylewrap backend doctor"],
    "backend list": ["stylewrap backend list", "stylewrap backend list --json"],
    "backend install": ["stylewrap backend install llamafactory", "stylewrap backend install swift --gpu"],
    "backend doctor": ["stylewrap backend doctor", "stylewrap backend doctor swift"],
    "render": ["stylewrap render", "stylewrap render --backend swift --preset seed-translational"],
    "train": ["stylewrap train", "stylewrap train --backend swift --preset seed-classical",
              "stylewrap train --set train.num_train_epochs=1",
              "stylewrap train --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 --master-port 29500 --nproc-per-node 8",
              "stylewrap train --launcher slurm --nodes 2 --gpus-per-node 8 --partition gpu --dry-run"],
    "runs": ["stylewrap runs list", "stylewrap runs show latest", "stylewrap runs cancel latest"],
    "runs cancel": ["stylewrap runs cancel latest", "stylewrap runs cancel 20261201-1112"],
    "runs list": ["stylewrap runs list", "stylewrap runs list --json"],
    "webui": ["stylewrap webui", "stylewrap webui --backend swift --port 7861"],
    "runs show": ["stylewrap runs show latest", "stylewrap runs show 20261201-1112 --json"],
    "eval": ["stylewrap eval latest", "stylewrap eval latest --open",
             "stylewrap eval --endpoint http://127.0.0.1:8000/v1 --model default-lora --api-key-env KEY"],
    "compare": ["stylewrap compare latest", "stylewrap compare 20261201-1112 --probes classical --open"],
    "export": ["stylewrap export latest", "stylewrap export latest --checkpoint best --out merged/"],
    "deploy": ["stylewrap deploy --run latest --detach", "stylewrap deploy --model Qwen/Qwen2.5-0.5B-Instruct --port 8001",
               "stylewrap deploy status"],
    "deploy status": ["stylewrap deploy status"],
    "deploy logs": ["stylewrap deploy logs", "stylewrap deploy logs --port 8001 -n 200"],
    "deploy stop": ["stylewrap deploy stop", "stylewrap deploy stop --port 8001"],
    "publish": ["stylewrap publish model latest --repo me/my-style --dry-run",
                "stylewrap publish dataset datagen/ --repo me/my-style-data"],
    "publish model": ["stylewrap publish model latest --repo me/my-style --dry-run",
                      "stylewrap publish model latest --merged --public"],
    "publish dataset": ["stylewrap publish dataset datagen/ --repo me/my-style-data --dry-run"],
    "chat": ["stylewrap chat", "stylewrap chat --model tiny-model --system \"be brief\"",
             "stylewrap chat --base-url http://127.0.0.1:8001/v1 --api-key-env MY_KEY"],
    "app": ["stylewrap app", "stylewrap app --port 7861",
            "stylewrap app --base-url http://127.0.0.1:8001/v1 --api-key-env MY_KEY"],
}


def examples_epilog(path: str) -> str | None:
    lines = EXAMPLES.get(path)
    if not lines:
        return None
    # \b keeps Click from re-flowing the lines
    return "\b\nExamples:\n" + "\n".join(f"  $ {line}" for line in lines)


def first_sentence(help_text: str | None) -> str:
    """A command's summary for its group's list: the first sentence whole, never cut with '...'."""
    paragraph = (help_text or "").strip().split("\n\n")[0].replace("\n", " ")
    paragraph = " ".join(paragraph.split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[:end + 1]


def attach(command: click.Command, path: tuple[str, ...]) -> click.Command:
    """Give `command` (and, for a group, every subcommand) its examples and whole summaries."""
    if command.epilog is None:
        command.epilog = examples_epilog(" ".join(path))
    if command.short_help is None:
        command.short_help = first_sentence(command.help)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            attach(sub, (*path, name))
    return command


def write_stages(formatter: click.HelpFormatter, summaries: dict[str, str]) -> None:
    """The top page's commands, one section a workflow stage."""
    for title, names in STAGES:
        with formatter.section(title):
            formatter.write_dl([(name, summaries[name]) for name in names if name in summaries])
