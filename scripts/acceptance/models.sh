#!/usr/bin/env bash
# Acceptance measurements for "models as data" on the real Lite1/Lite2 weights (not part of make test):
# ideal images of 5 classes (probability on the saved PNG, as saved and through the model's own resize + crop),
# a targeted attack to "cat" at ε = 4/255 re-read by classify, index + top over the sample photos, and a small
# gallery. Usage: OUT=/tmp/acc-models bash scripts/acceptance/models.sh [lite1 lite2 …]
set -euo pipefail
cd "$(dirname "$0")/../.."
V=.build/release/vizlab
OUT="${OUT:-/tmp/acc-models}"
HOME_DIR="${VIZLAB_HOME:-$HOME/.cache/vizlab}"
MODELS=("$@")
[ $# -gt 0 ] || MODELS=(lite1 lite2)
CLASSES=("tiger cat" "Pekinese" "espresso" "goldfish" "castle")
STEPS="${STEPS:-512}"
for m in "${MODELS[@]}"; do
    o="$OUT/$m"; rm -rf "$o"; mkdir -p "$o"
    echo "== $m: ideal classes ($STEPS steps, seed 1)"
    args=(); for c in "${CLASSES[@]}"; do args+=(--class "$c"); done
    /usr/bin/time -f "   %e s, peak RSS %M KB" $V ideal --model "$m" "${args[@]}" --steps "$STEPS" --seed 1 --out "$o/ideal" --json > "$o/ideal.json"
    python3 - "$o/ideal.json" <<'PY'
import json, sys
for s in json.load(open(sys.argv[1])):
    print("   %-28s p = %.4f on the saved PNG, top-1 %s" % (s["image"], s["classProbabilityOnSavedImage"], s["top5OnSavedImage"][0]["name"]))
PY
    echo "   through the model's resize + centre crop (vizlab classify):"
    $V classify --model "$m" --top 1 "$o"/ideal/*.png | paste - - | sed 's/^/   /'
    echo "== $m: attack chicky_512.png → cat at ε 4/255, then classify the saved PNG"
    $V attack "$HOME_DIR/samples/chicky_512.png" --model "$m" --target cat --eps 4 --seed 1 --out "$o/attack" 2>/dev/null | sed 's/^/   /'
    $V classify --model "$m" --top 2 "$o/attack/chicky_512.adv.png" | sed 's/^/   /'
    echo "== $m: index the sample photos, top tiger cat (282)"
    $V index "$HOME_DIR/samples" --model "$m" --db "$o/index.sqlite" 2>/dev/null | sed 's/^/   /'
    $V top logits:282 --model "$m" --db "$o/index.sqlite" --k 4 --out "$o/top_tiger_cat.png" | sed 's/^/   /'
    echo "== $m: a small gallery (4 channels of two layers, 64 steps, 2 classes)"
    layers=$($V models --json | python3 -c "import json,sys; a=[r for r in json.load(sys.stdin) if r['name']=='$m'][0]; print(a['defaultLayer'])")
    $V gallery --model "$m" --out "$o/gallery" --layers "$layers" --channels 4 --steps 64 --diversity 0 --class "tiger cat" --class espresso \
        --class-steps 64 --dataset "$o/index.sqlite" --seed 1 2>&1 | tail -1 | sed 's/^/   /'
done
