#!/usr/bin/env bash
# Issue 3 acceptance measurements (feature visualization). Slow (minutes); not part of `make test`.
#   bash scripts/acceptance/visualize.sh [channels|ideal|tv|repro|speed]...   (default: all)
# Writes everything under $OUT (default /tmp/vizlab-acceptance) and prints one table per section.
set -euo pipefail
cd "$(dirname "$0")/../.."
V=.build/release/vizlab
OUT="${OUT:-/tmp/vizlab-acceptance}"
SAMPLES="${VIZLAB_HOME:-$HOME/.cache/vizlab}/samples"
mkdir -p "$OUT"
sections=("${@:-channels ideal tv repro speed}")
sections=(${sections[@]})

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

for section in "${sections[@]}"; do case "$section" in
channels)
    # 20 channels drawn with a fixed seed from stem, blocks.0 … blocks.15; the photo set is every sample photo
    # `make setup` fetches (18 files, preprocessed like `vizlab classify`).
    units=$(python3 - <<'PY'
import random
layers = [("stem", 32)] + list(zip([f"blocks.{i}" for i in range(16)], [16,24,24,40,40,80,80,80,112,112,112,192,192,192,192,320]))
rng = random.Random(2026)
picks = sorted(rng.sample(range(17), 17))[:17]
units = []
while len(units) < 20:
    name, c = rng.choice(layers); u = f"{name}:{rng.randrange(c)}"
    if u not in units: units.append(u)
print(" ".join(units))
PY
)
    # rendered = the channel's spatial mean on the saved 224² PNG; photoMean = its largest spatial mean over the
    # photos; photoMax = its largest single value over the photos; ratio = rendered / photoMean.
    printf '%-14s %10s %10s %10s %8s %s\n' unit rendered photoMean photoMax ratio verdict
    for u in $units; do
        name=${u/:/_}
        [ -f "$OUT/channels/$name.json" ] || $V channel "$u" --seed 1 --out "$OUT/channels" >/dev/null 2>"$OUT/channels.$name.log"
        rendered=$(json "$OUT/channels/$name.json" "d['valueOnSavedImage']")
        read -r pmean pmax < <($V activation "$u" "$SAMPLES"/*.png "$SAMPLES"/*.jpg --json | python3 -c "
import json,sys; r=[x for x in json.load(sys.stdin) if x.get('mean') is not None]; print(max(x['mean'] for x in r), max(x['max'] for x in r))")
        python3 -c "
r,m,x=$rendered,$pmean,$pmax; relu6='$u'.startswith('stem')
dead = x == 0 and r == 0
ok = (r >= 1.5*m) or (relu6 and (r >= m or r >= 5.4))
verdict = 'dead (0 on every photo and on the render)' if dead else ('ok' if ok else 'FAIL')
print('%-14s %10.3f %10.3f %10.3f %8s %s' % ('$u', r, m, x, '%.2f' % (r/m) if m > 0 else '-', verdict))"
    done
    $V grid "$OUT"/channels/*.png --columns 5 --tile 160 --out "$OUT/channels_grid.png" --title "20 random channels, 512 steps, seed 1" >/dev/null
    ;;
ideal)
    classes=("tiger cat" Pekinese espresso goldfish castle "school bus" banana volcano pizza lemon)
    args=(); for c in "${classes[@]}"; do args+=(--class "$c"); done
    /usr/bin/time -f "ideal: %e s wall for 10 classes" $V ideal "${args[@]}" --seed 1 --out "$OUT/ideal" >/dev/null 2>"$OUT/ideal.log"
    tail -1 "$OUT/ideal.log"
    printf '%-26s %8s %-22s %s\n' image p_asis top1_asis "classify (resize 256 + crop 224)"
    for f in "$OUT"/ideal/class_*.json; do
        png="${f%.json}.png"
        top=$($V classify --top 1 --json "$png" | python3 -c "import json,sys; t=json.load(sys.stdin)[0]['top'][0]; print('%s %.4f' % (t['name'], t['probability']))")
        printf '%-26s %8.4f %-22s %s\n' "$(basename "$png")" "$(json "$f" "d['classProbabilityOnSavedImage']")" \
            "$(json "$f" "d['top5OnSavedImage'][0]['name']")" "$top"
    done
    ;;
tv)
    printf '%-14s %6s %10s %8s\n' unit tv activation TV
    for u in blocks.3:5 blocks.8:10 blocks.12:40 stem:7; do
        for tv in 0 default; do
            flag=(); [ "$tv" = 0 ] && flag=(--tv 0)
            $V channel "$u" "${flag[@]}" --seed 1 --out "$OUT/tv/$tv" >/dev/null 2>&1
            f="$OUT/tv/$tv/${u/:/_}.json"
            printf '%-14s %6s %10.3f %8.4f\n' "$u" "$tv" "$(json "$f" "d['valueOnSavedImage']")" "$(json "$f" "d['totalVariationOfSavedImage']")"
        done
    done
    $V grid "$OUT"/tv/0/*.png "$OUT"/tv/default/*.png --columns 4 --out "$OUT/tv_grid.png" --title "top: --tv 0, bottom: default --tv 50 (same seed)" >/dev/null
    ;;
repro)
    for run in a b; do $V channel blocks.8:10 --seed 7 --steps 128 --out "$OUT/repro/$run" >/dev/null 2>&1; done
    cmp "$OUT/repro/a/blocks.8_10.png" "$OUT/repro/b/blocks.8_10.png" && echo "repro: byte-identical PNGs (seed 7, 128 steps)"
    $V channel blocks.8:10 --seed 8 --steps 128 --out "$OUT/repro/c" >/dev/null 2>&1
    cmp -s "$OUT/repro/a/blocks.8_10.png" "$OUT/repro/c/blocks.8_10.png" || echo "repro: seed 8 gives a different PNG"
    ;;
speed)
    for u in blocks.3:5 blocks.8:10 logits:282; do
        /usr/bin/time -f "speed: $u 512 steps 224²: %e s wall" $V channel "$u" --seed 1 --out "$OUT/speed" >/dev/null 2>"$OUT/speed.log"
        tail -1 "$OUT/speed.log"
    done
    ;;
*) echo "unknown section $section" >&2; exit 2 ;;
esac; done
