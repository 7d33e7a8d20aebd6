"""Dataset formats and registrations (installed as `stylewrap.adapters`).

Every format is read into one canonical `Record` (OpenAI-style messages + tools + meta) and
written back from it; see CONTRACTS.md for the interface other parts of stylewrap rely on.
"""

from stylewrap.adapters.files import Problem, detect_format, read_records, scan, write_records
from stylewrap.adapters.formats import FORMATS, Format, register_format
from stylewrap.adapters.records import ROLES, Record, RowProblem
from stylewrap.adapters.registration import register_llamafactory, register_swift, swift_dataset_registration

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
    "register_llamafactory",
    "register_swift",
    "scan",
    "swift_dataset_registration",
    "write_records",
]
