#!/usr/bin/env bash
# swift training on Slurm, written by stylewrap: 1 node(s) x 2 process(es),
# 2 in all. Submitted with `sbatch config/sbatch.sh` from the run folder; resubmit the same way.
# Files it reads (paths relative to the run folder, which every node must see): config/train.yaml, data/
#SBATCH --job-name=stylewrap-RUN
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=2
#SBATCH --output=/shared/project/runs/RUN/train.log
#SBATCH --open-mode=append
set -euo pipefail
cd /shared/project/runs/RUN
export PYTHONUNBUFFERED=1
export PATH=/shared/stylewrap/envs/swift/bin:"$PATH"
export ACCELERATE_USE_CPU=true
# every node's torchrun meets at the first host of the job (node rank 0), on one port
export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"
export MASTER_PORT=29500
export NNODES=1
export NPROC_PER_NODE=2
# one task per node, its rank the node's index in the job; swift starts torchrun from its
# environment (/shared/stylewrap/envs/swift/bin) with these variables, one process per GPU
srun --nodes=1 --ntasks-per-node=1 --kill-on-bad-exit=1 \
  bash -c 'export NODE_RANK="$SLURM_NODEID"; exec "$@"' torchrun-node /shared/stylewrap/envs/swift/bin/swift sft config/train.yaml
