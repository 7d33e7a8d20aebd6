"""Prints, as a JSON list, the field names of the argument dataclasses named on the command line.

Runs inside a backend's environment through `stylewrap.runner.script_invocation` (stylewrap is not
installed there): `python ... _known_keys.py llamafactory.hparams.ModelArguments ...`.
"""

import dataclasses
import importlib
import json
import sys

names = set()
for spec in sys.argv[1:]:
    module, _, attr = spec.rpartition(".")
    names.update(field.name for field in dataclasses.fields(getattr(importlib.import_module(module), attr)))
print(json.dumps(sorted(names)))
