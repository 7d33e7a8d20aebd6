"""`stylewrap run`: the whole path from one stylewrap.yaml, stage by stage.

`stages` is the table (what each stage reads, writes and which library function it calls: the
same one its single-stage command calls), `fingerprint` hashes a stage's inputs, `lock` keeps what
each stage last ran on in `stylewrap.lock`, `runner` decides and runs, `summary` reports, `entry`
is what the CLI calls.
"""
