#ifndef VIZLAB_CKERNELS_H
#define VIZLAB_CKERNELS_H

/// 1 when this CPU runs AVX-512F (checked once, by cpuid), else 0.
int vz_cpu_has_avx512(void);

/// The tile's fused epilogues (Activation in the engine: identity, relu, relu6).
enum { VZ_ACT_IDENTITY = 0, VZ_ACT_RELU = 1, VZ_ACT_RELU6 = 2 };

/// C[0..<rows, 0..<cols] = act(A · B over k + bias[row]), with AVX-512: a 6×32 tile in 12 zmm accumulators (rows ≤ 6, cols ≤ 32).
/// A: a 6-row panel packed k-major (a[kk*6 + r]). B: columns 0..<16 at b0 + kk*ldb, columns 16..<32 at b1 + kk*ldb
/// (in place: b1 = b0 + 16 with ldb the row length; packed 16-column panels: b1 = the next panel, ldb = 16).
/// Columns past `cols` are neither read nor written (masked). Each element is the same chain of fused multiply-adds
/// in k order as the AVX2 tile's, so the two give the same bits. `bias` (the tile's first row's, or NULL) and
/// `act` (VZ_ACT_…) are applied in registers before the store, with the bits of Activation.apply on the stored
/// product; both absent, C is the plain product. With `accumulate` the chains start from C's stored values instead
/// of 0 (a later block of k: the result has the bits of one pass over both blocks when only the last block passes
/// bias and act). Call only when vz_cpu_has_avx512().
void vz_tile_6x32_avx512(long k, const float *a, const float *b0, const float *b1, long ldb,
                         float *c, long ldc, long rows, long cols, const float *bias, int act, int accumulate);

/// The same for a tile at most 16 columns wide: C[0..<rows, 0..<cols] (rows ≤ 12, cols ≤ 16), rows 0..<6 from the A
/// panel a0 and 6..<12 from the next panel a1 (a1 = a0 when rows ≤ 6), B's columns at b + kk*ldb. Bias (12 rows'),
/// act and accumulate as above; the same bits as the 6×32 tile's for the same elements.
void vz_tile_12x16_avx512(long k, const float *a0, const float *a1, const float *b, long ldb,
                          float *c, long ldc, long rows, long cols, const float *bias, int act, int accumulate);

/// One depthwise plane with AVX-512: y[oy, ox] = act(bias + Σ w[ky*k + kx] · x[oy*stride + ky − padTop,
/// ox*stride + kx − padLeft]), zero outside the inH×inW input (the bottom and right padding follow from outH, outW).
/// k is 3 or 5, stride 1 or 2; returns 0 (and writes nothing) for any other shape. Any plane size; no scratch.
/// `act` as for the tile (VZ_ACT_…), with Activation.apply's select bits. Call only when vz_cpu_has_avx512().
int vz_depthwise_plane_avx512(const float *x, float *y, const float *w, float bias, long inH, long inW,
                              long outH, long outW, long padTop, long padLeft, long k, long stride, int act);

/// What a backward pass needs of an activation's output y (Activation.maskGradient's cases), a byte per value:
/// 0 inside the active range (relu: y > 0; relu6: 0 < y < 6), 1 clamped low (y ≤ 0), 2 clamped high (relu6, y ≥ 6),
/// 3 unordered (NaN). Four times smaller than y itself, which a fused pass does not keep. AVX-512 (call only when
/// vz_cpu_has_avx512()), as is vz_mask_by_codes.
void vz_activation_codes(const float *y, unsigned char *code, long count, int act);

/// g[i] = 0 where the code says the activation passes no gradient: codes 1–3 (Activation.maskGradient); with
/// `redirect`, Lucid's redirected gradient instead: only code 1 with g < 0 and code 2 with g > 0 (as
/// Activation.maskGradient with ClampGradient.redirect on).
void vz_mask_by_codes(float *g, const unsigned char *code, long count, int redirect);

#endif
