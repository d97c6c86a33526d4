#!/usr/bin/env python3
"""Offline search for a near-duplicate descriptor among what `vizlab index` stores (no model run).

Input: an index of the combined folder of scripts/acceptance/duplicates.sh (corpus + photo set), built with
    vizlab index out/acceptance/duplicates/combined --db out/acceptance/duplicates/layers.sqlite \
        --layers blocks.10 blocks.12 blocks.14 blocks.15 head logits
and the photo set's GROUPS.tsv ($VIZLAB_HOME/data/duplicates/GROUPS.tsv).

A stats blob (per image and layer) is little-endian: C float32 max, C float32 mean, C uint16 argmax-x,
C uint16 argmax-y. The embedding table holds `pool` (1280 float32).

Descriptors: per layer mean (avg pooling), max (MAC) and mean+max (each L2-normalized, concatenated);
pool; a few cross-layer concatenations (each part L2-normalized first). Each in four variants:
raw, sqrt (signed square root), c (centred: minus the reference mean), sqrt+c; and PCA-whitened
(pcaw: centred, projected on the reference's top K principal axes, divided by sqrt(eigenvalue + 10% of
the mean kept eigenvalue)). The reference set (mean, PCA) is the corpus minus files byte-identical to a source
photo: no photo-set image, nor any copy of one, is used to fit anything.
Everything ends L2-normalized; similarity = cosine; groups = connected components at a threshold
(single link, as `vizlab duplicates`).

Measured on the photo set alone (95 photos x {original, resized, jpeg, crop90}):
  link  = per photo, the largest threshold at which its 4 images are still connected (the maximum spanning
          tree's weakest edge); link_min = min over photos
  cross = the highest cosine between images of different photos; margin = link_min - cross_max
  mid   = (link_min + cross_max) / 2; pairwise P/R of the photo-set grouping at mid
then over all images (corpus added) at mid: P/R again, corpus files grouped with photo-set images that are not
byte-identical to one of those photos' source ("false joins"), and groups wholly inside the corpus.

Usage: python3 scripts/reference/duplicate_descriptors.py [DB] [GROUPS.tsv] [OUT.json]
  env TOP=N rows per table; ONLY="desc;desc" evaluate just those (names as printed, blocks.N spelt out);
  REF_HALF=0|1 fit the centring mean and PCA on every other reference image (a stability check).
"""
import itertools, json, os, sqlite3, sys, time
import numpy as np

DB = sys.argv[1] if len(sys.argv) > 1 else "out/acceptance/duplicates/layers.sqlite"
HOME = os.environ.get("VIZLAB_HOME", os.path.expanduser("~/.cache/vizlab"))
GROUPS = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HOME, "data/duplicates/GROUPS.tsv")
OUT = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(DB), "descriptors.json")
PCA_K = (64, 128, 256)
t0 = time.time()

con = sqlite3.connect(DB)
rows = list(con.execute("select id, path, sha256 from image where error is null order by path"))
ids = [r[0] for r in rows]; paths = [r[1] for r in rows]; shas = [r[2] for r in rows]
row_of = {i: k for k, i in enumerate(ids)}
N = len(ids)
emb = {}
for i, v in con.execute("select imageId, vector from embedding"):
    emb[i] = np.frombuffer(v, "<f4")
feat = {"pool": np.stack([emb[i] for i in ids]).astype(np.float64)}
layers = [r[0] for r in con.execute("select distinct layer from stats order by layer")]
for L in layers:
    mx, mn = {}, {}
    for i, d in con.execute("select imageId, data from stats where layer = ?", (L,)):
        C = len(d) // 12
        a = np.frombuffer(d, "<f4", count=2 * C)
        mx[i], mn[i] = a[:C], a[C:]
    feat[L + ":max"] = np.stack([mx[i] for i in ids]).astype(np.float64)
    feat[L + ":mean"] = np.stack([mn[i] for i in ids]).astype(np.float64)
if "head:mean" in feat:
    print("check: max |pool - head mean| = %.2e" % np.abs(feat["pool"] - feat["head:mean"]).max(), file=sys.stderr)

# Labels: photo-set file -> source photo.
label = {}
for line in open(GROUPS).read().splitlines()[1:]:
    f, src = line.split("\t")
    label[f] = src
photo_rows, photo_lab = [], []
for k, p in enumerate(paths):
    parts = p.split(os.sep)
    if "photoset" in parts and parts[-1] in label and parts[-2] == "photoset":
        photo_rows.append(k); photo_lab.append(label[parts[-1]])
photo_rows = np.array(photo_rows); photo_lab = np.array(photo_lab)
is_photo = np.zeros(N, bool); is_photo[photo_rows] = True
ROOT = os.path.dirname(os.path.dirname(paths[photo_rows[0]]))   # the combined folder
source_sha = {photo_lab[j]: shas[photo_rows[j]] for j in range(len(photo_rows)) if paths[photo_rows[j]].endswith(".webp")}
src_shas = set(source_sha.values())
ref = np.array([k for k in range(N) if not is_photo[k] and shas[k] not in src_shas])
if os.environ.get("REF_HALF") in ("0", "1"):       # robustness: fit mean/PCA on every other reference image only
    ref = ref[int(os.environ["REF_HALF"])::2]
corpus_n = int((~is_photo).sum())
print("images %d: photo set %d (%d photos), corpus %d, reference (corpus minus source copies) %d"
      % (N, len(photo_rows), len(set(photo_lab)), corpus_n, len(ref)), file=sys.stderr)

def l2(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

def ssqrt(x):
    return np.sign(x) * np.sqrt(np.abs(x))

def variant(x, v):
    """x: raw N x d (already a normalized concatenation or a single part)."""
    if "sqrt" in v:
        x = ssqrt(x)
    if v.startswith("pcaw") or "pcaw" in v:
        k = int(v.split("pcaw")[1])
        x = l2(x)
        mu = x[ref].mean(0)
        xc = x - mu
        u, s, vt = np.linalg.svd(xc[ref], full_matrices=False)
        k = min(k, len(s))
        ev = s[:k] ** 2 / len(ref)
        return l2(xc @ vt[:k].T / np.sqrt(ev + 0.1 * ev.mean()))
    if "c" in v.split("+"):
        x = l2(x)
        x = x - x[ref].mean(0)
    return l2(x)

def concat(*names, pre=lambda a: a):
    return np.hstack([l2(pre(feat[n])) for n in names])

bases = {"pool": (lambda: feat["pool"], 1280)}
for L in layers:
    for kind in ("mean", "max"):
        if L == "logits" and kind == "max":
            continue                                 # 1x1: max == mean
        n = L + ":" + kind
        bases[n] = (lambda n=n: feat[n], feat[n].shape[1])
    if L != "logits":
        bases[L + ":mean+max"] = (lambda L=L: concat(L + ":mean", L + ":max"), 2 * feat[L + ":max"].shape[1])
combos = [("pool", "blocks.15:max"), ("pool", "blocks.14:max"), ("pool", "head:max"), ("head:max", "blocks.15:max"),
          ("pool", "blocks.15:mean"), ("blocks.14:max", "blocks.15:max", "head:max"),
          ("blocks.12:max", "blocks.14:max", "blocks.15:max", "head:max"),
          ("pool", "blocks.12:max", "blocks.14:max", "blocks.15:max"), ("blocks.15:mean+max", "head:mean+max")]
for c in combos:
    if all(n in feat or n.endswith(":mean+max") for n in c):
        parts = [(lambda n=n: bases[n][0]()) for n in c]
        bases[" + ".join(c)] = (lambda parts=parts: np.hstack([l2(p()) for p in parts]),
                                sum(bases[n][1] for n in c))
variants = ["raw", "sqrt", "c", "sqrt+c"] + ["sqrt+pcaw%d" % k for k in PCA_K] + ["pcaw%d" % k for k in PCA_K]

def components(S, t):
    """Connected components of the graph S >= t (min-label propagation, vectorized)."""
    A = S >= t
    lab = np.arange(len(S))
    while True:
        new = np.where(A, lab[None, :], len(S)).min(1)
        new = np.minimum(new, lab)
        new = new[new]                               # pointer jumping
        if np.array_equal(new, lab):
            return lab
        lab = new

def pr(comp, lab):
    same = lab[:, None] == lab[None, :]
    grp = comp[:, None] == comp[None, :]
    iu = np.triu_indices(len(lab), 1)
    same, grp = same[iu], grp[iu]
    tp = int((same & grp).sum()); fp = int((~same & grp).sum()); fn = int((same & ~grp).sum())
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0), fp, fn

foreign = [k for k in range(N) if not is_photo[k]]
own = np.array([[shas[k] == source_sha[s] for k in foreign] for s in photo_lab])
by_src = {}
for j, s in enumerate(photo_lab):
    by_src.setdefault(s, []).append(j)

def bottleneck(S, idx):
    edges = sorted(((S[a, b], a, b) for a, b in itertools.combinations(idx, 2)), reverse=True)
    comp = {a: a for a in idx}
    def find(a):
        while comp[a] != a: a = comp[a]
        return a
    last = 1.0
    for c, a, b in edges:
        if find(a) != find(b):
            comp[find(a)] = find(b); last = c
    return last

def evaluate(X):
    Xp = X[photo_rows]
    Sp = Xp @ Xp.T
    link = {s: bottleneck(Sp, idx) for s, idx in by_src.items()}
    diff = photo_lab[:, None] != photo_lab[None, :]
    cross = float(np.where(diff, Sp, -np.inf).max())
    ci = np.unravel_index(np.argmax(np.where(diff, Sp, -np.inf)), Sp.shape)
    lmin = min(link.values()); worst = min(link, key=link.get)
    cross_sd = float(Sp[np.triu(diff, 1)].std())     # spread of the cross-photo cosines: margin / cross_sd is scale-free
    mid = (lmin + cross) / 2
    P, R, fp, fn = pr(components(Sp, mid), photo_lab)
    S = X @ X.T
    comp = components(S, mid)
    Pa, Ra, fpa, fna = pr(comp[photo_rows], photo_lab)
    false_joins, corpus_groups, corpus_groups_identical, corpus_group_list = [], 0, 0, []
    members = {}
    for k, c in enumerate(comp):
        members.setdefault(c, []).append(k)
    for c, ks in members.items():
        ps = [k for k in ks if is_photo[k]]; cs = [k for k in ks if not is_photo[k]]
        if not ps:
            if len(cs) > 1:
                corpus_groups += 1
                corpus_group_list.append(sorted(os.path.relpath(paths[k], ROOT) for k in cs))
                corpus_groups_identical += len({shas[k] for k in cs}) == 1
            continue
        okshas = {source_sha.get(label[os.path.basename(paths[k])]) for k in ps}
        for k in cs:
            if shas[k] not in okshas:
                false_joins.append((round(float(S[k, ps].max()), 4), os.path.relpath(paths[k], ROOT)))
    # the highest photo-set vs corpus cosine, corpus files byte-identical to the photo's own source excluded
    Spc = Xp @ X[foreign].T
    fmax = float(np.where(own, -np.inf, Spc).max())
    return {"link_min": lmin, "worst": worst, "cross_max": cross,
            "cross_pair": [os.path.basename(paths[photo_rows[ci[0]]]), os.path.basename(paths[photo_rows[ci[1]]])],
            "margin": lmin - cross, "cross_sd": cross_sd, "margin_sd": (lmin - cross) / cross_sd, "mid": mid, "P": P, "R": R, "fp": fp, "fn": fn,
            "P_all": Pa, "R_all": Ra, "false_joins": sorted(false_joins, reverse=True),
            "corpus_groups": corpus_groups, "corpus_groups_identical": corpus_groups_identical,
            "corpus_group_list": sorted(corpus_group_list),
            "photo_vs_foreign_corpus_max": fmax,
            "links_below_cross": sum(v < cross for v in link.values())}

ONLY = [d for d in os.environ.get("ONLY", "").split(";") if d]   # e.g. ONLY="pool [sqrt];blocks.14:max [pcaw256]"
results = []
for name, (make, dims) in bases.items():
    if ONLY and not any(d == name or d.startswith(name + " [") for d in ONLY):
        continue
    base = make()
    for v in variants:
        if ONLY and (name if v == "raw" else "%s [%s]" % (name, v)) not in ONLY:
            continue
        X = variant(base, v)
        r = evaluate(X)
        r["descriptor"] = name if v == "raw" else "%s [%s]" % (name, v)
        r["dims"] = X.shape[1]
        results.append(r)
results.sort(key=lambda r: -r["margin"])
json.dump(results, open(OUT, "w"), indent=1, default=lambda o: o.item())

short = lambda d: d.replace("blocks.", "b").replace(" + ", "+")
def row(r):
    return "%-42s %5d  %.4f  %.4f  %+.4f  %5.2f  %.4f  %.3f/%.3f  %.3f/%.3f  %3d  %3d(%d)" % (
        short(r["descriptor"]), r["dims"], r["link_min"], r["cross_max"], r["margin"], r["margin_sd"], r["mid"], r["P"], r["R"],
        r["P_all"], r["R_all"], len(r["false_joins"]), r["corpus_groups"], r["corpus_groups_identical"])
hdr = "%-42s %5s  %-6s  %-6s  %-7s  %-5s  %-6s  %-11s  %-11s  %3s  %s" % (
    "descriptor (bN = blocks.N)", "dims", "link", "cross", "margin", "m/sd", "mid", "P/R photos", "P/R +corpus", "FJ",
    "corpus-only(identical)")
n = int(os.environ.get("TOP", "12"))
fitfree = lambda r: "pcaw" not in r["descriptor"] and "c]" not in r["descriptor"]
for title, sel in (("all, by margin", results), ("all, by margin/sd", sorted(results, key=lambda r: -r["margin_sd"])),
                   ("no fitted statistics (raw, sqrt), by margin", [r for r in results if fitfree(r)]),
                   ("centring only (c, sqrt+c), by margin", [r for r in results if r["descriptor"].endswith("c]")])):
    print("== " + title); print(hdr)
    for r in sel[:n]:
        print(row(r))
print("== reference")
for r in results:
    if r["descriptor"] in ("pool", "pool [sqrt]", "pool [c]", "pool [sqrt+c]", "logits:mean"):
        print(row(r))
print("%d descriptors in %.1f s; wrote %s" % (len(results), time.time() - t0, OUT), file=sys.stderr)
