#!/usr/bin/env bash
# The model card's training recipe with three rounds of hard-example mining, from nothing,
# timed: corpus, Speech Commands base, a first fine-tuning (round 0, 1 epoch), then three
# rounds of: mine new sentences with the last model, fine-tune it 1 epoch on the corpus +
# every mined set so far; thresholds. Training runs on 2 processes
# (urgence.nn.data_parallel), mining on 2 workers.
# usage: scripts/train-from-nothing.sh OUT_DIR [SHARED_DIR]
# CORPUS_OPTIONS, BASE_OPTIONS, MINE_OPTIONS and ROUND_OPTIONS, if set, are added to the
# corpus build, base training, mining and fine-tuning (rounds 0 to ROUNDS) lines (e.g.
# "--pairs-per-keyword 3", "--set floor=true", "--set ema_momentum=0.999"). ROUNDS (default
# 3) is the number of mining rounds. BASE=words pretrains the base on French words (urgence
# corpus words: the keywords, their closest words, frequent words) beside Speech Commands'
# English words, instead of the English words alone (MODEL_CARD.md, session 13). ARCH is the
# network: bcresnet (the default and the shipped model's family since session 15: BC-ResNet,
# since session 18 width 40 with time stride 4, urgence.kws.architectures; sessions 15-17
# shipped width 24 with time stride 2) or dscnn (the DS-CNN, width 80, shipped until session
# 15); the later steps start from the base and keep its architecture.
# RANDOM_VOICES (default 24 since session 19, 0 before) is the number of random espeak-ng voice
# variants added to the corpus (urgence.corpus.voice_variants; ~19% more training rows).
# TUNE_CALLS (default 1200 since session 19, 300 before) is the number of validation calls the
# thresholds are tuned on: tuned on 300, a model's thresholds route a fresh set of validation
# calls worse (MODEL_CARD.md, session 19).
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
case "${ARCH:-bcresnet}" in
  bcresnet) arch_options="--set architecture=bcresnet --set width=40 --set time_stride=4" ;;
  dscnn) arch_options="--set architecture=dscnn --set width=80" ;;
  *) echo "ARCH must be dscnn or bcresnet, got ${ARCH}" >&2; exit 2 ;;
esac
stamp start
# shellcheck disable=SC2086  # CORPUS_OPTIONS holds several words
$U corpus build --out "$out/corpus" --shared "$shared" --random-voices "${RANDOM_VOICES:-24}" ${CORPUS_OPTIONS:-} \
  --quiet > "$out/corpus.log" 2>&1
stamp corpus
if [ "${BASE:-speech_commands}" = words ]; then
  $U corpus words --out "$out/words" --shared "$shared" --quiet > "$out/words.log" 2>&1
  stamp words
  # shellcheck disable=SC2086
  $U train --set task=words --data "$out/words" --set speech_commands="$shared/data/speech_commands_v002_test" \
    --set cmn=true $arch_options --epochs 6 --set processes=2 ${BASE_OPTIONS:-} --out "$out/base/model" \
    --run-dir "$out/base" > "$out/base.log" 2>&1
else
  # shellcheck disable=SC2086
  $U train --set task=speech_commands --data "$shared/data/speech_commands_v002_test" --set cmn=true $arch_options \
    --epochs 8 --set processes=2 ${BASE_OPTIONS:-} --out "$out/base/model" --run-dir "$out/base" > "$out/base.log" 2>&1
fi
stamp base
# shellcheck disable=SC2086
$U train --data "$out/corpus" --set init_from="$out/base/model" --set cmn=true --epochs 1 \
  --set processes=2 ${ROUND_OPTIONS:-} --out "$out/round0" --run-dir "$out/round0-run" > "$out/round0.log" 2>&1
stamp round0
mined=""
rounds=${ROUNDS:-3}
for round in $(seq 1 "$rounds"); do
  # shellcheck disable=SC2086
  $U corpus mine --corpus "$out/corpus" --model "$out/round$((round - 1))" --seed $((round - 1)) \
    --workers 2 --out "$out/corpus/features_mined$round.npz" ${MINE_OPTIONS:-} --quiet > "$out/mine$round.log" 2>&1
  stamp "mine$round"
  mined="$mined${mined:+, }\"$out/corpus/features_mined$round.npz\""
  # shellcheck disable=SC2086
  $U train --data "$out/corpus" --set extra_train="[$mined]" --set init_from="$out/round$((round - 1))" \
    --set cmn=true --epochs 1 --set processes=2 ${ROUND_OPTIONS:-} --out "$out/round$round" \
    --run-dir "$out/round$round-run" > "$out/round$round.log" 2>&1
  stamp "round$round"
done
cp "$out/round$rounds.npz" "$out/kws.npz"
cp "$out/round$rounds.json" "$out/kws.json"
$U evaluate-calls --tune --calls "${TUNE_CALLS:-1200}" --seed 1 --model "$out/kws" --shared "$shared" \
  > "$out/tune.log" 2>&1
stamp thresholds
