#ifndef VIZLAB_HNSW_H
#define VIZLAB_HNSW_H
// extern "C" over hnswlib 0.6.2 (Debian libhnswlib-dev, header-only C++). The index is an opaque handle; every
// C++ exception is caught inside the shim and becomes VZ_HNSW_ERROR with its message in err — no exception
// crosses into Swift. A saved file is validated (header arithmetic, every link in range, file length) before
// hnswlib reads it, and nothing is allocated from a size the file alone declares.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { VZ_HNSW_OK = 0, VZ_HNSW_ERROR = 1, VZ_HNSW_CORRUPT = 2 };
enum { VZ_HNSW_L2 = 0, VZ_HNSW_IP = 1 };  // ip: distance 1 − a·b (cosine on unit vectors); l2: squared distance

typedef struct vz_hnsw vz_hnsw;

// A new, empty index. The level generator is seeded with `seed` (hnswlib's random_seed), so the same vectors
// added in the same order on one thread give the same graph and the same file bytes.
int vz_hnsw_new(int space, size_t dim, size_t capacity, size_t M, size_t ef_construction, size_t seed,
                vz_hnsw **out, char *err, size_t errlen);
// Loads a file written by vz_hnsw_save after checking it against (space, dim); capacity ≥ its element count.
int vz_hnsw_load(const char *path, int space, size_t dim, size_t capacity, vz_hnsw **out, char *err, size_t errlen);
// The checks vz_hnsw_load makes, on a file's bytes (for tests and fuzzing).
int vz_hnsw_validate(const uint8_t *bytes, size_t size, size_t dim, char *err, size_t errlen);
void vz_hnsw_free(vz_hnsw *h);

// Adds n vectors (row-major, dim floats each) with their labels, in order, on the calling thread. Grows the
// capacity as needed. A label already present is updated (and undeleted) — hnswlib's semantics.
int vz_hnsw_add(vz_hnsw *h, const float *vectors, const uint64_t *labels, size_t n, char *err, size_t errlen);
int vz_hnsw_mark_deleted(vz_hnsw *h, uint64_t label, char *err, size_t errlen);
void vz_hnsw_set_ef(vz_hnsw *h, size_t ef);
void vz_hnsw_reseed(vz_hnsw *h, size_t seed);
// k nearest for each of nq queries: labels and distances, nearest first; a row with fewer than k results
// (a small or mostly deleted index) is padded with label UINT64_MAX and distance +inf.
int vz_hnsw_search(const vz_hnsw *h, const float *queries, size_t nq, size_t k, uint64_t *labels, float *distances,
                   char *err, size_t errlen);
int vz_hnsw_save(const vz_hnsw *h, const char *path, char *err, size_t errlen);

size_t vz_hnsw_count(const vz_hnsw *h);     // elements stored, deleted included
size_t vz_hnsw_deleted(const vz_hnsw *h);   // marked deleted
size_t vz_hnsw_dim(const vz_hnsw *h);
size_t vz_hnsw_M(const vz_hnsw *h);
size_t vz_hnsw_ef_construction(const vz_hnsw *h);
// Every stored label (up to cap) and whether it is deleted; returns how many were written.
size_t vz_hnsw_labels(const vz_hnsw *h, uint64_t *labels, uint8_t *deleted, size_t cap);

// x / (‖x‖ + 1e-30) in place, the normalization hnswlib's Python binding applies for its "cosine" space (same
// float operations in the same order, so both sides index the same unit vectors).
void vz_hnsw_normalize(float *x, size_t dim);

#ifdef __cplusplus
}
#endif
#endif
