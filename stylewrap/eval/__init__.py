"""`stylewrap eval`: whether a style took, whether the answers still answer, and what broke.

probes (what is asked) -> variants (who answers: a run's models through its backend, endpoints
through the OpenAI client) -> metrics + classifier + judge (per answer) -> scoring + bootstrap
(per variant, with intervals) -> report (eval.json, report.md, report.html, chart). entry.py
ties them together; the CLI calls `plan_eval` and `run_eval` only.
"""
