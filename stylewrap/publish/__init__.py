"""Publishing to ModelScope: `plan` (which files leave the machine, and how they are rewritten),
`scan` (the secret scanner every byte passes before upload), `hub` (the ModelScope client calls)
and `card` (the generated model/dataset card)."""
