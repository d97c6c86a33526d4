#!/usr/bin/env bash
# Acceptance measurements for `vizlab similar` (issue 16). Not part of `make test`; ~15 min on 2 cores once the
# index exists (indexing the 70,000 Fashion-MNIST images at 224² takes ~30 min more; reused if present).
#   DB       the index (default $VIZLAB_HOME/fashion-mnist.sqlite; made here with --layers blocks.10 if missing)
#   OUT      output folder (default out/acceptance/similar)
#   EFS      ef values to measure (default "10 16 24 32 48 64 96 128")
#   REPEAT   searches per ef on each side, the fastest reported (default 5); run on a quiet machine
# Side by side in one run: vizlab (exact and HNSW through the shim) and Debian's python3-hnswlib + NumPy on the
# same stored vectors and parameters (scripts/reference/similar_reference.py, /usr/bin/python3).
set -euo pipefail
VIZLAB="${VIZLAB:-.build/release/vizlab}"
HOME_DIR="${VIZLAB_HOME:-$HOME/.cache/vizlab}"
FM="$HOME_DIR/data/fashion-mnist"
DB="${DB:-$HOME_DIR/fashion-mnist.sqlite}"
OUT="${OUT:-out/acceptance/similar}"
EFS="${EFS:-10 16 24 32 48 64 96 128}"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
mkdir -p "$OUT"
[ -f "$FM/DONE" ] || bash scripts/make-fashion
dpkg-query -W -f='${Status}' python3-hnswlib 2>/dev/null | grep -q "install ok installed" \
    || { [ "$(id -u)" -eq 0 ] && apt-get install -y -qq python3-hnswlib python3-numpy >/dev/null || sudo apt-get install -y -qq python3-hnswlib python3-numpy >/dev/null; }

if [ ! -f "$DB" ]; then
    echo "== indexing the 70,000 Fashion-MNIST images (train + test) with the default model"
    /usr/bin/time -f "index: wall %e s, peak RSS %M kB" "$VIZLAB" index "$FM" --db "$DB" --layers blocks.10 --batch 16
fi

echo "== exact search, 10,000 test queries over all 70,000 (the query itself excluded)"
"$VIZLAB" similar --db "$DB" --queries "$FM/test" --exact --evaluate --no-grids --json --out "$OUT/exact" > /dev/null
python3 -c "import json; s=json.load(open('$OUT/exact/similar.json')); print(f\"exact: {s['queries']} queries in {s['searchSeconds']:.1f} s ({s['queriesPerSecond']:.0f}/s, {s['threads']} threads); label agreement@10 {s['labelAgreement']:.4f}\")"
echo "== exact on blocks.10 (112 channels, spatial means): label agreement of an earlier layer"
"$VIZLAB" similar --db "$DB" --queries "$FM/test" --layer blocks.10 --exact --evaluate --no-grids --json --out "$OUT/exact-blocks10" > /dev/null
python3 -c "import json; s=json.load(open('$OUT/exact-blocks10/similar.json')); print(f\"blocks.10: label agreement@10 {s['labelAgreement']:.4f}\")"

echo "== HNSW (M 16, efConstruction 200, seed 100): build, then every ef single-threaded"
rm -rf "$DB.hnsw"
hnsw=()
for ef in $EFS; do
    "$VIZLAB" similar --db "$DB" --queries "$FM/test" --ef "$ef" --repeat "${REPEAT:-5}" --no-grids --json --out "$OUT/hnsw-ef$ef" > /dev/null
    hnsw+=("$OUT/hnsw-ef$ef/similar.json")
done
python3 - "$OUT" $EFS <<'PY'
import json, sys
out, efs = sys.argv[1], sys.argv[2:]
first = json.load(open(f"{out}/hnsw-ef{efs[0]}/similar.json"))
g = first["graph"]
print(f"graph: {g['action']} in {g['buildSeconds']:.1f} s, {g['fileBytes']/1e6:.1f} MB, {g['vectors']} vectors ({g['file']})")
PY

echo "== the same vectors in NumPy and python3-hnswlib"
/usr/bin/python3 scripts/reference/similar_reference.py --db "$DB" --queries-prefix "$FM/test" \
    --ef $EFS --repeat "${REPEAT:-5}" --vizlab-exact "$OUT/exact/similar.json" --vizlab-hnsw "${hnsw[@]}" --out "$OUT/reference.json"

echo "== 8 queries, one per class, and their neighbours (the committed picture)"
queries=()
for c in t-shirt_top trouser pullover dress coat sandal sneaker bag; do files=("$FM/test/$c"/*.png); queries+=("${files[0]}"); done
"$VIZLAB" similar "${queries[@]}" --db "$DB" --ef 64 --out "$OUT/grid" > /dev/null
echo "grid: $OUT/grid/similar_grid.png"

echo "== incremental: +100 images, then those 100 removed"
work="$OUT/incremental"; rm -rf "$work"; mkdir -p "$work/extra"
cp "$DB" "$work/db.sqlite"; cp -r "$DB.hnsw" "$work/db.sqlite.hnsw"
stamps=("$HOME_DIR"/dataset/tuxpaint/*.png); cp "${stamps[@]:0:100}" "$work/extra/"
"$VIZLAB" index "$work/extra" --db "$work/db.sqlite" --layers blocks.10 --json > "$work/index-add.json"
"$VIZLAB" similar --db "$work/db.sqlite" --queries "$work/extra" --ef 64 --no-grids --json --out "$work/after-add" > /dev/null
cp -r "$work/extra" "$work/removed" && rm -f "$work/extra"/*   # keep copies to query with (not indexed)
"$VIZLAB" index "$work/extra" --db "$work/db.sqlite" --layers blocks.10 --json > "$work/index-remove.json"
"$VIZLAB" similar --db "$work/db.sqlite" --queries "$work/removed" --ef 64 --k 50 --no-grids --json --out "$work/after-remove" > /dev/null
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
add = json.load(open(f"{w}/index-add.json")); a = json.load(open(f"{w}/after-add/similar.json"))
rm = json.load(open(f"{w}/index-remove.json")); r = json.load(open(f"{w}/after-remove/similar.json"))
hits_after_add = sum(h["path"].startswith(f"{w}/extra/") for x in a["answers"] for h in x["neighbours"])
returned = sum("/extra/" in h["path"] for x in r["answers"] for h in x["neighbours"])
short = sum(len(x["neighbours"]) < 50 for x in r["answers"])  # a deleted id the graph returned would be dropped here
print(f"+100: index embedded {add['new']} new ({add['unchanged']} unchanged); graph {a['graph']['action']}, added {a['graph']['added']};"
      f" queries found {hits_after_add} of their 10 neighbours among the new images")
print(f"-100: index removed {rm['removed']}; graph {r['graph']['action']}, marked deleted {r['graph']['markedDeleted']};"
      f" the removed images returned {returned} times in {len(r['answers'])} x 50 neighbours; lists short of 50: {short}")
PY

echo "== kill -9 during the HNSW build, then the next run, against a clean build"
kill_dir="$OUT/kill"; rm -rf "$kill_dir"; mkdir -p "$kill_dir"
cp "$DB" "$kill_dir/db.sqlite"
"$VIZLAB" similar "${queries[@]}" --db "$kill_dir/db.sqlite" --ef 64 --no-grids --json --out "$kill_dir/killed" > /dev/null 2>&1 &
pid=$!; sleep 25; kill -9 $pid; wait $pid 2>/dev/null || true
echo "after the kill: $(ls -A "$kill_dir/db.sqlite.hnsw" | tr '\n' ' ')"
"$VIZLAB" similar "${queries[@]}" --db "$kill_dir/db.sqlite" --ef 64 --no-grids --json --out "$kill_dir/next" > /dev/null
python3 - "$kill_dir" "$DB.hnsw" "$OUT/grid/similar.json" <<'PY'
import glob, hashlib, json, sys
k, clean, grid = sys.argv[1:]
n = json.load(open(f"{k}/next/similar.json")); g = json.load(open(grid))
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
mine = glob.glob(f"{k}/db.sqlite.hnsw/pool-cosine-*.bin"); ref = glob.glob(f"{clean}/pool-cosine-*.bin")
print(f"next run: graph {n['graph']['action']} ({n['graph']['reason']}); graph file identical to the clean build: {sha(mine[0]) == sha(ref[0])};"
      f" answers identical: {[a['neighbours'] for a in n['answers']] == [a['neighbours'] for a in g['answers']]}")
PY

echo "== a corrupt graph file: one line, non-zero, nothing written"
bin=$(ls "$kill_dir"/db.sqlite.hnsw/pool-cosine-*.bin)
printf '\xff' | dd of="$bin" bs=1 seek=1000000 conv=notrunc 2>/dev/null
set +e; "$VIZLAB" similar "${queries[0]}" --db "$kill_dir/db.sqlite" --out "$kill_dir/corrupt"; rc=$?; set -e
echo "exit $rc; output folder written: $([ -e "$kill_dir/corrupt" ] && echo yes || echo no)"
