#!/usr/bin/env bash
# The model card's training recipe with two rounds of hard-example mining, from nothing,
# timed: corpus, Speech Commands base, a first fine-tuning (1 epoch: the miner), mining, a
# second fine-tuning (from the first, on the corpus + the mined rows), mining again with that
# model, a third fine-tuning (from the second, on the corpus + both mined sets), thresholds.
# Training runs on 2 processes (urgence.nn.data_parallel), mining on 2 workers.
# usage: scripts/train-from-nothing.sh OUT_DIR [SHARED_DIR]
# Writes OUT_DIR/kws.{npz,json} and OUT_DIR/times.txt (seconds per step, with the load).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/train-from-nothing.sh OUT_DIR [SHARED_DIR]}
shared=${2:-../shared}
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=1  # one BLAS thread trains faster than two on this 2-core machine
U=.venv/bin/urgence
t0=$(date +%s)
stamp() { echo "$1 $(($(date +%s) - t0)) s, $(uptime | sed 's/.*load/load/')" | tee -a "$out/times.txt"; }
stamp start
$U corpus build --out "$out/corpus" --shared "$shared" --quiet > "$out/corpus.log" 2>&1
stamp corpus
$U train --set task=speech_commands --data "$shared/data/speech_commands_v002_test" --set cmn=true --set width=80 \
  --epochs 8 --set processes=2 --out "$out/base/model" --run-dir "$out/base" > "$out/base.log" 2>&1
stamp base
$U train --data "$out/corpus" --set init_from="$out/base/model" --set cmn=true --epochs 1 \
  --set processes=2 --out "$out/miner" --run-dir "$out/miner-run" > "$out/miner.log" 2>&1
stamp miner
$U corpus mine --corpus "$out/corpus" --model "$out/miner" --workers 2 --quiet > "$out/mine.log" 2>&1
stamp mine
$U train --data "$out/corpus" --set extra_train="[\"$out/corpus/features_mined.npz\"]" \
  --set init_from="$out/miner" --set cmn=true --epochs 2 --set processes=2 \
  --out "$out/round1" --run-dir "$out/round1-run" > "$out/round1.log" 2>&1
stamp round1
$U corpus mine --corpus "$out/corpus" --model "$out/round1" --seed 1 --workers 2 \
  --out "$out/corpus/features_mined2.npz" --quiet > "$out/mine2.log" 2>&1
stamp mine2
$U train --data "$out/corpus" \
  --set extra_train="[\"$out/corpus/features_mined.npz\", \"$out/corpus/features_mined2.npz\"]" \
  --set init_from="$out/round1" --set cmn=true --epochs 2 --set processes=2 \
  --set validation_clips="$shared/data/validation_other_voices" --out "$out/kws" \
  --run-dir "$out/finetune" > "$out/finetune.log" 2>&1
stamp finetune
$U evaluate-calls --tune --calls 300 --seed 1 --model "$out/kws" --shared "$shared" > "$out/tune.log" 2>&1
stamp thresholds
