#!/usr/bin/env bash
# Acceptance measurements for `vizlab train` (not part of make test): the same recipe in vizlab and in PyTorch
# (scripts/reference/train_reference.py, the reference venv), one after the other on an otherwise idle machine,
# on a folder-per-class set (default: the 2,000/1,000/1,000 Fashion-MNIST split of `make fashion`) with the
# Lite0 base at SIZE² (default 112): the three modes' test accuracies and wall times side by side, and vizlab's
# peak RSS. The feature cache is emptied first, so vizlab's features mode computes the features its later modes
# reuse (the reference computes them in every mode).
# Usage: DATA=… OUT=/tmp/acc-train SIZE=112 bash scripts/acceptance/train.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
V="$PWD/.build/release/vizlab"
HOME_DIR="${VIZLAB_HOME:-$HOME/.cache/vizlab}"
DATA="${DATA:-$HOME_DIR/data/fashion-small}"
OUT="${OUT:-/tmp/acc-train}"
SIZE="${SIZE:-112}"
FEATURES_EPOCHS="${FEATURES_EPOCHS:-30}" AUGMENT_EPOCHS="${AUGMENT_EPOCHS:-10}" FINETUNE_EPOCHS="${FINETUNE_EPOCHS:-10}"
# Fine-tuning on plain images by default (on Fashion-MNIST the tutorial's augmentation costs accuracy; FINETUNE_AUGMENT=1 uses it).
FINETUNE_AUGMENT="${FINETUNE_AUGMENT:-0}"
LR="${LR:-1e-3}" FINETUNE_LR="${FINETUNE_LR:-1e-5}" BATCH="${BATCH:-32}" SEED="${SEED:-0}"
PY="$HOME_DIR/venv-ref/bin/python"
rm -rf "$OUT"; mkdir -p "$OUT"
rm -rf "$HOME_DIR"/features/lite0-*
common=(--size "$SIZE" --batch "$BATCH" --lr "$LR" --seed "$SEED" --threads 2)
run() {  # name, args…
    local name="$1"; shift
    /usr/bin/time -f "%e %M" -o "$OUT/$name.time" "$V" train "$DATA" "${common[@]}" "$@" --out "$OUT/$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log"
    read -r secs rss < "$OUT/$name.time"
    python3 - "$OUT/$name.json" "$name" "$secs" "$rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("vizlab %-9s test accuracy %6.2f%%  best %s epoch %d  wall %7.1f s  peak RSS %6.0f MB" % (
    sys.argv[2], r["accuracy"] * 100, r["best"]["stage"], r["best"]["epoch"], float(sys.argv[3]), int(sys.argv[4]) / 1024))
PY
}
start=$(date +%s.%N)
run features --mode features --epochs "$FEATURES_EPOCHS"
run augment --mode augment --epochs "$AUGMENT_EPOCHS"
ft_aug=(); [ "$FINETUNE_AUGMENT" = 1 ] || ft_aug=(--no-augment)
run finetune --mode finetune --unfreeze-from blocks.12 --epochs "$FEATURES_EPOCHS" --finetune-epochs "$FINETUNE_EPOCHS" --finetune-lr "$FINETUNE_LR" "${ft_aug[@]}"
vz=$(python3 -c "import time; print('%.1f' % (time.time() - $start))")
echo "vizlab, the three modes in sequence: $vz s"
start=$(date +%s.%N)
"$PY" scripts/reference/train_reference.py --data "$DATA" --mode all --size "$SIZE" --threads 2 --seed "$SEED" \
    --lr-features "$LR" --lr-augment "$LR" --lr-finetune "$FINETUNE_LR" \
    --batch-features "$BATCH" --batch-augment "$BATCH" --batch-finetune "$BATCH" \
    --epochs-features "$FEATURES_EPOCHS" --epochs-augment "$AUGMENT_EPOCHS" --epochs-finetune "$FINETUNE_EPOCHS" \
    --finetune-augment "$FINETUNE_AUGMENT" \
    --out "$OUT/torch.json" > "$OUT/torch.txt" 2> "$OUT/torch.log"
pt=$(python3 -c "import time; print('%.1f' % (time.time() - $start))")
python3 - "$OUT" "$vz" "$pt" <<'PY'
import json, sys, os
out, vz, pt = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
t = json.load(open(os.path.join(out, "torch.json")))
modes = t.get("modes", t)
print("\n| mode | vizlab test accuracy | PyTorch test accuracy | Δ (points) | vizlab wall | PyTorch wall | ratio |")
print("|---|---|---|---|---|---|---|")
for m in ("features", "augment", "finetune"):
    v = json.load(open(os.path.join(out, m + ".json")))
    secs = float(open(os.path.join(out, m + ".time")).read().split()[0])
    tm = modes[m]
    ta, tw = tm["test_accuracy"], tm["wall_seconds"]
    print("| %s | %.2f%% | %.2f%% | %+.2f | %.1f s | %.1f s | %.2f |" % (m, v["accuracy"] * 100, ta * 100, (v["accuracy"] - ta) * 100, secs, tw, secs / tw))
print("| all three, one after the other | | | | %.1f s | %.1f s | %.2f |" % (vz, pt, vz / pt))
PY
