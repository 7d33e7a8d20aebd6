#!/usr/bin/env bash
# llamafactory training on Slurm, written by stylewrap: 2 node(s) x 8 process(es),
# 16 in all. Submitted with `sbatch config/sbatch.sh` from the run folder; resubmit the same way.
# Files it reads (paths relative to the run folder, which every node must see): config/train.yaml, config/ds_zero2.json, data/
#SBATCH --job-name=stylewrap-RUN
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --partition=gpu
#SBATCH --time=1-00:00:00
#SBATCH --account=style
#SBATCH --output=/shared/project/runs/RUN/train.log
#SBATCH --open-mode=append
set -euo pipefail
cd /shared/project/runs/RUN
export PYTHONUNBUFFERED=1
export PATH=/shared/stylewrap/envs/llamafactory/bin:"$PATH"
export FORCE_TORCHRUN=1
# every node's torchrun meets at the first host of the job (node rank 0), on one port
export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"
export MASTER_PORT=29500
export NNODES=2
export NPROC_PER_NODE=8
# one task per node, its rank the node's index in the job; llamafactory-cli starts torchrun from its
# environment (/shared/stylewrap/envs/llamafactory/bin) with these variables, one process per GPU
srun --nodes=2 --ntasks-per-node=1 --kill-on-bad-exit=1 \
  bash -c 'export NODE_RANK="$SLURM_NODEID"; exec "$@"' torchrun-node /shared/stylewrap/envs/llamafactory/bin/llamafactory-cli train config/train.yaml
