#!/usr/bin/env bash
# Every measure of the model card for one keyword model: thresholds tuned on 1200 validation
# calls (seed 1; TUNE_CALLS to change it), the other synthesiser's clips, the corpus test
# split clean and at 10 dB + telephone (with thresholds and arg-max), and 300 test calls
# (seed 7).
# usage: scripts/evaluate-model.sh MODEL_STEM OUT_DIR [CORPUS] [SHARED_DIR]
# The model is copied to OUT_DIR/kws.{npz,json} and tuned there; reports go to OUT_DIR/*.txt.
# CALLS_AUDIO=DIR keeps the generated calls in DIR (val1-1200.npz, test7.npz) and reads them
# back on later runs: models evaluated with the same DIR hear the very same calls.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: scripts/evaluate-model.sh MODEL_STEM OUT_DIR [CORPUS] [SHARED_DIR]}
out=${2:?usage: scripts/evaluate-model.sh MODEL_STEM OUT_DIR [CORPUS] [SHARED_DIR]}
corpus=${3:-data/corpus2}
shared=${4:-../shared}
export OPENBLAS_NUM_THREADS=1
U=.venv/bin/urgence
mkdir -p "$out"
cp "$model.npz" "$out/kws.npz"
cp "$model.json" "$out/kws.json"
m=$out/kws
tune_calls=${TUNE_CALLS:-1200}
keep_val=() keep_test=()
if [[ -n ${CALLS_AUDIO:-} ]]; then
  keep_val=(--calls-audio "$CALLS_AUDIO/val1-$tune_calls.npz")
  keep_test=(--calls-audio "$CALLS_AUDIO/test7.npz")
fi
$U evaluate-calls --tune --calls "$tune_calls" --seed 1 --model "$m" --shared "$shared" "${keep_val[@]}" \
  > "$out/tune.txt"
$U evaluate "$m" "$shared/data/validation_other_voices" > "$out/other_voices.txt"
$U evaluate "$m" "$shared/data/validation_other_voices" --no-thresholds > "$out/other_voices_argmax.txt"
$U evaluate "$m" "$corpus" --split test > "$out/test_features.txt"
$U evaluate "$m" "$corpus" --split test --snr-db 10 --telephone > "$out/test_phone10.txt"
$U evaluate "$m" "$corpus" --split test --snr-db 10 --telephone --no-thresholds > "$out/test_phone10_argmax.txt"
$U evaluate-calls --calls 300 --seed 7 --model "$m" --shared "$shared" "${keep_test[@]}" > "$out/calls.txt"
grep -h "keywords right\|false accepts\|routing accuracy\|keyword recall:\|real speech without" "$out"/*.txt
