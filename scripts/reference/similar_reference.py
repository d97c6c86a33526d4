#!/usr/bin/python3
"""The same vectors, the same search, in NumPy and Debian's python3-hnswlib (issue 16's side-by-side).

Reads the pooled embeddings from a vizlab index (SQLite; the `embedding` table, float32 little-endian blobs),
takes as queries the indexed images whose path starts with --queries-prefix, and for each query excludes the
query itself (as `vizlab similar` does for an indexed query). Then:
  * exact top-k by cosine in NumPy (float64 products of the float32 unit vectors; ties by smaller id), compared
    with `vizlab similar --exact`'s answers (--vizlab-exact JSON);
  * hnswlib.Index('cosine') with the same M, ef_construction and random_seed, items added one thread in id order
    (what vizlab's shim does), searched single-threaded at each --ef: queries/s and recall@k against the NumPy
    exact answer; with --vizlab-hnsw JSON files, the fraction of queries whose k neighbours equal vizlab's.
Runs on Debian's /usr/bin/python3 (python3-hnswlib, python3-numpy); never part of the product.
"""
import argparse, json, os, sqlite3, sys, time

import hnswlib
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--queries-prefix", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--ef", type=int, nargs="+", default=[10, 20, 40, 80, 160])
    ap.add_argument("--vizlab-exact", help="similar.json of `vizlab similar --exact` on the same queries")
    ap.add_argument("--vizlab-hnsw", nargs="*", default=[], help="similar.json files of `vizlab similar --ef N`")
    ap.add_argument("--repeat", type=int, default=1, help="search this many times per ef, report the fastest")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    con = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    rows = con.execute("SELECT e.imageId, i.path, e.vector FROM embedding e JOIN image i ON i.id = e.imageId "
                       "WHERE i.error IS NULL ORDER BY e.imageId").fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    paths = [r[1] for r in rows]
    X = np.stack([np.frombuffer(r[2], dtype="<f4") for r in rows])
    n, d = X.shape
    prefix = a.queries_prefix.rstrip("/") + "/"
    qrows = np.array([i for i, p in enumerate(paths) if p.startswith(prefix)])
    print(f"{n} vectors of {d} dims; {len(qrows)} queries under {prefix}", file=sys.stderr)
    k = a.k

    # Exact, in float64 on the unit vectors.
    U = X / (np.linalg.norm(X, axis=1, keepdims=True) + 1e-30)
    U64 = U.astype(np.float64)
    t = time.time()
    exact = []
    for s in range(0, len(qrows), 256):
        blk = qrows[s:s + 256]
        S = U64[blk] @ U64.T
        S[np.arange(len(blk)), blk] = -np.inf  # the query itself
        for j in range(len(blk)):
            top = np.argpartition(-S[j], k + 8)[:k + 8]
            order = sorted(top, key=lambda c: (-S[j, c], ids[c]))[:k]
            exact.append([int(ids[c]) for c in order])
    exact_seconds = time.time() - t
    result = {"vectors": n, "dimension": d, "queries": len(qrows), "k": k, "numpy_exact_seconds": exact_seconds,
              "hnswlib_version": getattr(hnswlib, "__version__", "0.6.x (Debian python3-hnswlib)"), "ef": []}

    path_of = dict(zip(ids.tolist(), paths))
    qpaths = [paths[i] for i in qrows]
    if a.vizlab_exact:
        v = json.load(open(a.vizlab_exact))
        answers = {x["query"]: [h["path"] for h in x["neighbours"]] for x in v["answers"]}
        same = sum(answers.get(q) == [path_of[i] for i in e] for q, e in zip(qpaths, exact))
        sets = sum(set(answers.get(q) or []) == {path_of[i] for i in e} for q, e in zip(qpaths, exact))
        result["vizlab_exact_identical_lists"] = same
        result["vizlab_exact_identical_sets"] = sets
        result["vizlab_exact_queries"] = len(answers)
        print(f"exact top-{k}: vizlab == NumPy for {same}/{len(qpaths)} queries (as sets {sets})", file=sys.stderr)

    # hnswlib, one thread, same parameters, ids in ascending order.
    p = hnswlib.Index(space="cosine", dim=d)
    p.init_index(max_elements=n, ef_construction=a.ef_construction, M=a.M, random_seed=a.seed)
    p.set_num_threads(1)
    t = time.time()
    p.add_items(X, ids, num_threads=1)
    result["hnswlib_build_seconds"] = time.time() - t
    tmp = a.out + ".hnswlib.bin"
    p.save_index(tmp)
    result["hnswlib_file_bytes"] = os.path.getsize(tmp)
    os.remove(tmp)
    Q = X[qrows]
    vizlab_hnsw, vizlab_rate = {}, {}
    for f in a.vizlab_hnsw:
        v = json.load(open(f))
        vizlab_hnsw[v["ef"]] = {x["query"]: [h["id"] for h in x["neighbours"]] for x in v["answers"]}
        vizlab_rate[v["ef"]] = v["queriesPerSecond"]
    for ef in a.ef:
        p.set_ef(max(ef, k + 1))
        secs = float("inf")
        for _ in range(a.repeat):
            t = time.time()
            labels, _ = p.knn_query(Q, k=k + 1, num_threads=1)
            secs = min(secs, time.time() - t)
        found = []
        for qi, row in zip(qrows, labels):
            found.append([int(x) for x in row if x != ids[qi]][:k])
        rec = np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)])
        entry = {"ef": max(ef, k + 1), "seconds": secs, "queries_per_second": len(qrows) / secs, "recall": float(rec)}
        if entry["ef"] in vizlab_hnsw:
            mine = vizlab_hnsw[entry["ef"]]
            entry["identical_to_vizlab"] = sum(mine.get(q) == f for q, f in zip(qpaths, found)) / len(qpaths)
            entry["vizlab_recall"] = float(np.mean([len(set(mine.get(q) or []) & set(e)) / k for q, e in zip(qpaths, exact)]))
            entry["vizlab_queries_per_second"] = vizlab_rate[entry["ef"]]
        result["ef"].append(entry)
        print(f"hnswlib ef {entry['ef']}: recall@{k} {rec:.4f}, {entry['queries_per_second']:.0f} queries/s"
              + (f"; vizlab recall {entry['vizlab_recall']:.4f}, {entry['vizlab_queries_per_second']:.0f} queries/s,"
                 f" identical lists for {entry['identical_to_vizlab']:.4f}" if "identical_to_vizlab" in entry else ""),
              file=sys.stderr)
    json.dump(result, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
