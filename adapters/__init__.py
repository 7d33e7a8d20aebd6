"""Dataset formats (installed as `stylewrap.adapters`).

Every format is read into one canonical `Record` (OpenAI-style messages + tools + meta) and
written back from it. How each backend registers a file of a format is in that backend's unit
(`stylewrap.backends.<name>.registration`).
"""

from stylewrap.adapters.files import Problem, detect_format, read_records, scan, write_records
from stylewrap.adapters.formats import FORMATS, Format, register_format
# the preference formats (chosen/rejected pairs, labelled answers) register themselves on import
from stylewrap.adapters import preference  # noqa: E402,F401  (after formats: it registers into FORMATS)
from stylewrap.adapters.records import ROLES, Record, RowProblem

__all__ = [
    "FORMATS",
    "Format",
    "Problem",
    "ROLES",
    "Record",
    "RowProblem",
    "detect_format",
    "read_records",
    "register_format",
    "scan",
    "write_records",
]
