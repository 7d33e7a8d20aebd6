"""Dataset generation through any OpenAI-compatible API (`stylewrap datagen`).

styles (style YAML) -> stages (topics, dialogues, stylize) run by engine over client, with
parsing of replies, sink checkpoints, manifest accounting; pipeline ties them together.
"""
