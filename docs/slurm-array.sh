#!/usr/bin/env bash
# Spread a batch over a Slurm job array: task i of n runs shard i+1/n.
#   sbatch --array=0-7 docs/slurm-array.sh configs/batch.yaml
# Reruns skip finished jobs by their manifests; resubmit the array to finish a partial run.
#SBATCH --job-name=onnxpipe
#SBATCH --cpus-per-task=2
#SBATCH --mem=4G
#SBATCH --output=out/slurm-%A_%a.log
set -euo pipefail
config=${1:?usage: sbatch --array=0-N docs/slurm-array.sh CONFIG.yaml}
count=${SLURM_ARRAY_TASK_COUNT:?run this under sbatch --array}
index=${SLURM_ARRAY_TASK_ID:?}
exec onnxpipe run "$config" --shard "$((index + 1))/$count" --junit "out/junit-$index.xml"
