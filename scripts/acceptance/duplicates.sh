#!/usr/bin/env bash
# Acceptance measurements for `vizlab duplicates`. Not part of `make test`.
# The set: the sample photos plus, for each, a 50% resize, a JPEG q30 re-encode and a 90% centre crop
# (scripts/make-duplicate-set -> $VIZLAB_HOME/data/duplicates). It is indexed together with the `make dataset`
# corpus (hard links in $OUT/combined, copies if on another file system: the indexer skips symlinks), then
# `vizlab duplicates --db` runs at several thresholds. Scored over pairs of photo-set images: truth = same source
# photo, predicted = same group. Groups joining a photo-set image to a corpus image are reported (a corpus file
# byte-identical to the source photo is expected: 85 of the photos come from the corpus), as are groups wholly
# inside the corpus. Then `vizlab duplicates FOLDER` on the photo set alone (embedding on the fly).
# The index ($OUT/index.sqlite) is kept between runs (incremental); REINDEX=1 rebuilds it.
set -euo pipefail
VIZLAB="${VIZLAB:-.build/release/vizlab}"
HOME_DIR="${VIZLAB_HOME:-$HOME/.cache/vizlab}"
OUT="${OUT:-out/acceptance/duplicates}"
THRESHOLDS="${THRESHOLDS:-0.78 0.80 0.83 0.85 0.88 0.90 0.95}"
DEFAULT=0.83   # vizlab duplicates' default threshold: run three times for timing
POWER="${POWER:-0.5}"   # its default power normalization (signed square root)
LAYER="${LAYER:-pool}"          # or logits (indexed below); SKIP_FOLDER=1 skips the folder run
runs="$OUT/runs/$LAYER"
summary="$OUT/summary.json"; [ "$LAYER" = pool ] || summary="$OUT/summary-$LAYER.json"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"

VIZLAB_HOME="$HOME_DIR" bash scripts/make-duplicate-set
set_dir="$HOME_DIR/data/duplicates"
[ -d "$HOME_DIR/dataset" ] || { echo "no $HOME_DIR/dataset (run make dataset)" >&2; exit 1; }

mkdir -p "$OUT"
[ "${REINDEX:-0}" = 1 ] && rm -f "$OUT/index.sqlite"
rm -rf "$OUT/combined" "$runs" && mkdir -p "$OUT/combined" "$runs"
for pair in "$HOME_DIR/dataset:corpus" "$set_dir/photos:photoset"; do
    cp -al "${pair%%:*}" "$OUT/combined/${pair##*:}" 2>/dev/null || cp -r "${pair%%:*}" "$OUT/combined/${pair##*:}"
done
db="$OUT/index.sqlite"

echo "== index: corpus ($(find "$OUT/combined/corpus" -type f \( -name '*.png' -o -name '*.webp' -o -name '*.jpg' \) | wc -l)) + photo set ($(ls "$OUT/combined/photoset" | wc -l)), --layers logits (the pooled embedding is always stored)"
/usr/bin/time -f "wall %e s, peak RSS %M kB" -o "$OUT/index.time" "$VIZLAB" index "$OUT/combined" --db "$db" --layers logits --json > "$OUT/index.json"
cat "$OUT/index.time"

echo "== vizlab duplicates --db --layer $LAYER --power $POWER (no model run) at thresholds $THRESHOLDS; $DEFAULT three times for timing"
wall() { local out="$1" t0 t1; shift; t0=$(date +%s.%N); "$@" > "$out"; t1=$(date +%s.%N); echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}'; }  # wall FILE CMD...: CMD's stdout to FILE
for t in $THRESHOLDS; do
    n=1; [ "$t" = "$DEFAULT" ] && n=3
    for r in $(seq 1 $n); do
        w=$(wall "$runs/t$t.$r.json" "$VIZLAB" duplicates --db "$db" --layer "$LAYER" --threshold "$t" --power "$POWER" --no-grids --json --out "$runs/t$t")
        echo "$w" > "$runs/t$t.$r.wall"
        echo "  threshold $t run $r: wall $w s"
    done
done

if [ "${SKIP_FOLDER:-0}" != 1 ]; then
    echo "== vizlab duplicates FOLDER on the photo set alone (pool, defaults; embedding now, grids written to $OUT/folder)"
    rm -rf "$OUT/folder"
    w=$(wall "$OUT/folder.json" "$VIZLAB" duplicates "$OUT/combined/photoset" --json --out "$OUT/folder")
    echo "$w" > "$OUT/folder.wall"
    echo "  wall $w s"
fi

python3 - "$OUT" "$db" "$set_dir/GROUPS.tsv" "$THRESHOLDS" "$runs" "$summary" "$LAYER" "$DEFAULT" "$POWER" <<'PY'
import itertools, json, math, os, sqlite3, struct, sys
out, db, groups_tsv, thresholds, runs_dir, summary_path, layer, default, power = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), *sys.argv[5:10]
power = float(power)
root = os.path.abspath(os.path.join(out, "combined"))
label = {}                                       # photo-set path (absolute) -> source photo
for line in open(groups_tsv).read().splitlines()[1:]:
    f, src = line.split("\t")
    label[os.path.join(root, "photoset", f)] = src
con = sqlite3.connect(db)
rows = list(con.execute("select i.path, i.sha256, e.vector from image i join embedding e on e.imageId = i.id"))
sha = {p: s for p, s, _ in rows}
vec = {}
for p, _, v in rows:
    x = [math.copysign(abs(a) ** power, a) for a in struct.unpack("<%df" % (len(v) // 4), v)]  # what vizlab compares
    n = math.sqrt(sum(a * a for a in x)) or 1.0
    vec[p] = [a / n for a in x]
cos = lambda a, b: sum(x * y for x, y in zip(vec[a], vec[b]))
rel = lambda p: os.path.relpath(p, root)
source_sha = {src: sha[p] for p, src in label.items() if p.endswith(".webp")}
photo = sorted(p for p in label if p in vec)
corpus = sorted(p for p in vec if p not in label)
by_src = {}
for p in photo: by_src.setdefault(label[p], []).append(p)

# Embedding-level separation on the photo set.
within = {s: min(cos(a, b) for a, b in itertools.combinations(ps, 2)) for s, ps in by_src.items()}
def bottleneck(ps):                              # the highest threshold at which ps is connected by its own pairs
    edges = sorted(((cos(a, b), a, b) for a, b in itertools.combinations(ps, 2)), reverse=True)
    comp = {p: p for p in ps}
    def find(p):
        while comp[p] != p: p = comp[p]
        return p
    for c, a, b in edges:
        if find(a) != find(b):
            comp[find(a)] = find(b); last = c
    return last
chain = {s: bottleneck(ps) for s, ps in by_src.items()}
cross = max((cos(a, b), rel(a), rel(b)) for a, b in itertools.combinations(photo, 2) if label[a] != label[b])
foreign = max((cos(a, c), rel(a), rel(c)) for a in photo for c in corpus if sha[c] != source_sha[label[a]])

def score(doc):
    gid = {p: i for i, g in enumerate(doc["groups"]) for p in g["images"]}
    tp = fp = fn = 0; missed = []; wrong = []
    for a, b in itertools.combinations(photo, 2):
        same, grouped = label[a] == label[b], a in gid and gid.get(a) == gid.get(b)
        if same and grouped: tp += 1
        elif same: fn += 1; missed.append((round(cos(a, b), 4), rel(a), rel(b)))
        elif grouped: fp += 1; wrong.append((round(cos(a, b), 4), rel(a), rel(b)))
    mixed_expected = mixed_foreign = 0; foreign_members = []; corpus_groups = []
    exact = 0
    for g in doc["groups"]:
        ps = [p for p in g["images"] if p in label]; cs = [p for p in g["images"] if p not in label]
        srcs = {label[p] for p in ps}
        if not ps:
            corpus_groups.append({"images": [rel(p) for p in cs], "minCosine": round(g["minCosine"], 4)}); continue
        for c in cs:
            if any(sha.get(c) == source_sha[s] for s in srcs): mixed_expected += 1
            else:
                mixed_foreign += 1
                foreign_members.append((round(max(cos(c, p) for p in ps), 4), rel(c), sorted(srcs)))
        if len(srcs) == 1 and len(ps) == len(by_src[next(iter(srcs))]) and all(
                sha.get(c) == source_sha[next(iter(srcs))] for c in cs): exact += 1
    P = tp / (tp + fp) if tp + fp else 1.0
    R = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": round(P, 4), "recall": round(R, 4), "truePairs": tp, "falsePairs": fp, "missedPairs": fn,
            "exactSourceGroups": exact, "sources": len(by_src), "groups": len(doc["groups"]),
            "duplicatePairs": doc["duplicatePairs"], "images": doc["images"],
            "corpusCopiesOfSource": mixed_expected, "foreignCorpusMembers": sorted(foreign_members, reverse=True),
            "corpusOnlyGroups": corpus_groups, "missed": sorted(missed, reverse=True), "wrong": sorted(wrong, reverse=True),
            "seconds": round(doc["seconds"], 3), "searchSeconds": round(doc["searchSeconds"], 3)}

summary = {"index": json.load(open(os.path.join(out, "index.json"))), "indexTime": open(os.path.join(out, "index.time")).read().strip(),
           "photoSet": {"sources": len(by_src), "images": len(photo)}, "corpusImages": len(corpus),
           "embedding": {"minWithinSourceCosine": round(min(within.values()), 4),
                         "worstSourcesWithin": sorted((round(c, 4), s) for s, c in within.items())[:5],
                         "minChainCosine": round(min(chain.values()), 4),
                         "worstSourcesChain": sorted((round(c, 4), s) for s, c in chain.items())[:5],
                         "maxCrossSourceCosine": [round(cross[0], 4)] + list(cross[1:]),
                         "maxPhotoToForeignCorpusCosine": [round(foreign[0], 4)] + list(foreign[1:])},
           "layer": layer, "thresholds": {}}
print("\n threshold  P       R       TP   FP  FN  exact/95  groups  foreign-corpus  corpus-only  seconds(own)  wall")
for t in thresholds:
    runs = sorted(f for f in os.listdir(runs_dir) if f.startswith("t%s." % t) and f.endswith(".json"))
    docs = [json.load(open(os.path.join(runs_dir, f))) for f in runs]
    walls = [float(open(os.path.join(runs_dir, f[:-5] + ".wall")).read()) for f in runs]
    s = score(docs[0]); s["secondsAll"] = [round(d["seconds"], 3) for d in docs]; s["wallAll"] = walls
    summary["thresholds"][t] = s
    print(" %-9s  %.4f  %.4f  %3d  %2d  %3d  %3d/%-3d  %6d  %14d  %11d  %s  %s" % (
        t, s["precision"], s["recall"], s["truePairs"], s["falsePairs"], s["missedPairs"], s["exactSourceGroups"], s["sources"],
        s["groups"], len(s["foreignCorpusMembers"]), len(s["corpusOnlyGroups"]),
        "/".join("%.2f" % x for x in s["secondsAll"]), "/".join("%.2f" % x for x in walls)))
if os.path.exists(os.path.join(out, "folder.json")):
  fd = json.load(open(os.path.join(out, "folder.json")))
  fs = score(fd); fs["embedSeconds"] = round(fd["embedSeconds"], 3); fs["wall"] = float(open(os.path.join(out, "folder.wall")).read())
  summary["folderRun"] = fs
  print("\n folder run (photo set only, defaults): P %.4f R %.4f, %d groups, own %.2f s (embed %.2f, search %.3f), wall %.2f s"
      % (fs["precision"], fs["recall"], fs["groups"], fs["seconds"], fs["embedSeconds"], fs["searchSeconds"], fs["wall"]))
e = summary["embedding"]
print(" pooled embedding (power %.2g): min within-source pair cosine %.4f, min chain (spanning) cosine %.4f, max cross-source %.4f (%s ~ %s),"
      " max photo-set vs non-identical corpus %.4f (%s ~ %s)" % ((power, e["minWithinSourceCosine"], e["minChainCosine"])
      + tuple(e["maxCrossSourceCosine"]) + tuple(e["maxPhotoToForeignCorpusCosine"])))
print(" worst sources (chain):", e["worstSourcesChain"])
s95 = summary["thresholds"].get(default)
if s95:
    print(" missed pairs at %s (cosine, a, b):" % default); [print("   ", m) for m in s95["missed"]]
    print(" foreign corpus members at %s (max cosine, file, sources):" % default); [print("   ", m) for m in s95["foreignCorpusMembers"]]
    print(" corpus-only groups at %s:" % default); [print("   ", g["minCosine"], g["images"]) for g in s95["corpusOnlyGroups"]]
json.dump(summary, open(summary_path, "w"), indent=1)
print("\nwrote " + summary_path)
PY
