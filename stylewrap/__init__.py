"""stylewrap: a chat style from nothing to a deployed, published model.

Kept import-light on purpose: `stylewrap --help` must never pull torch, transformers,
openai, modelscope or a backend.
"""

__version__ = "0.1.0"
