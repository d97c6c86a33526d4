// The matrix-product tile with AVX-512, compiled for it per function (the rest of the build targets Haswell) and
// picked at run time by the engine's MicroKernel when the CPU has it.
#include "ckernels.h"
#include <immintrin.h>

int vz_cpu_has_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cached;
}

// The tiles' epilogue on one vector, as Activation.apply does it in memory: t = acc + bias (0 without one: −0 + 0 is
// +0 there too), then t < 0 ? 0 : t, then t > 6 ? 6 : t. max(0, t) and min(6, t) with the constant first return t
// itself when t is NaN or ±0, as those selects do, so the bits are the same. Call only with a bias or an activation
// (with neither, the tiles store the plain product).
__attribute__((target("avx512f"), always_inline))
static inline __m512 vz_epilogue(__m512 t, float bias, int act) {
    t = _mm512_add_ps(t, _mm512_set1_ps(bias));
    if (act != VZ_ACT_IDENTITY) t = _mm512_max_ps(_mm512_setzero_ps(), t);
    if (act == VZ_ACT_RELU6) t = _mm512_min_ps(_mm512_set1_ps(6.0f), t);
    return t;
}

__attribute__((target("avx512f")))
void vz_tile_6x32_avx512(long k, const float *a, const float *b0, const float *b1, long ldb,
                         float *c, long ldc, long rows, long cols, const float *bias, int act, int accumulate) {
    const __mmask16 m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? (__mmask16)0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    // A later block of k continues the chains where the stored C left them (stored floats reload exactly, so the
    // sums are the bits of one unblocked pass); rows past `rows` stay 0 and are never stored.
    if (accumulate) {
#define VZ_TILE_LOAD(r, x0, x1) if (rows > r) { x0 = _mm512_maskz_loadu_ps(m0, c + r * ldc); x1 = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16); }
        VZ_TILE_LOAD(0, c00, c01) VZ_TILE_LOAD(1, c10, c11) VZ_TILE_LOAD(2, c20, c21)
        VZ_TILE_LOAD(3, c30, c31) VZ_TILE_LOAD(4, c40, c41) VZ_TILE_LOAD(5, c50, c51)
#undef VZ_TILE_LOAD
    }
    // One k step: six broadcasts of A, twelve fused multiply-adds on the two vectors of B.
#define VZ_TILE_STEP(load0, load1) do { \
        const __m512 x0 = (load0), x1 = (load1); \
        const float *ap = a + kk * 6; \
        __m512 t = _mm512_set1_ps(ap[0]); c00 = _mm512_fmadd_ps(t, x0, c00); c01 = _mm512_fmadd_ps(t, x1, c01); \
        t = _mm512_set1_ps(ap[1]); c10 = _mm512_fmadd_ps(t, x0, c10); c11 = _mm512_fmadd_ps(t, x1, c11); \
        t = _mm512_set1_ps(ap[2]); c20 = _mm512_fmadd_ps(t, x0, c20); c21 = _mm512_fmadd_ps(t, x1, c21); \
        t = _mm512_set1_ps(ap[3]); c30 = _mm512_fmadd_ps(t, x0, c30); c31 = _mm512_fmadd_ps(t, x1, c31); \
        t = _mm512_set1_ps(ap[4]); c40 = _mm512_fmadd_ps(t, x0, c40); c41 = _mm512_fmadd_ps(t, x1, c41); \
        t = _mm512_set1_ps(ap[5]); c50 = _mm512_fmadd_ps(t, x0, c50); c51 = _mm512_fmadd_ps(t, x1, c51); \
    } while (0)
    // Full tiles load B plainly; a partial one through its masks (lanes past `cols` read as 0, never touched).
    if (m0 == 0xFFFF && m1 == 0xFFFF) {
        for (long kk = 0; kk < k; kk++) VZ_TILE_STEP(_mm512_loadu_ps(b0 + kk * ldb), _mm512_loadu_ps(b1 + kk * ldb));
    } else {
        for (long kk = 0; kk < k; kk++) VZ_TILE_STEP(_mm512_maskz_loadu_ps(m0, b0 + kk * ldb), _mm512_maskz_loadu_ps(m1, b1 + kk * ldb));
    }
#undef VZ_TILE_STEP
    __m512 acc[12] = { c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51 };
    // The epilogue in registers (vz_epilogue).
    if (bias || act != VZ_ACT_IDENTITY) {
        for (long r = 0; r < rows; r++) {
            for (int h = 0; h < 2; h++) acc[2 * r + h] = vz_epilogue(acc[2 * r + h], bias ? bias[r] : 0.0f, act);
        }
    }
    for (long r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[2 * r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[2 * r + 1]);
    }
}

// The same product for a tile at most 16 columns wide (a product's last ≤ 16 columns, Winograd's 16 tiles of a 14×14
// plane): 12 rows in 12 zmm accumulators, rows 0..<6 from one 6-row A panel and 6..<12 from the next, so a narrow
// tail runs full vectors instead of the 6×32 tile's half-masked ones. Each element is the same chain of FMAs in k
// order, from 0 or (accumulate) from C, and the epilogue is the 6×32 tile's: the same bits.
__attribute__((target("avx512f")))
void vz_tile_12x16_avx512(long k, const float *a0, const float *a1, const float *b, long ldb,
                          float *c, long ldc, long rows, long cols, const float *bias, int act, int accumulate) {
    const __mmask16 m = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    __m512 acc[12];
    for (int r = 0; r < 12; r++) acc[r] = accumulate && r < rows ? _mm512_maskz_loadu_ps(m, c + r * ldc) : _mm512_setzero_ps();
    __m512 c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5];
    __m512 c6 = acc[6], c7 = acc[7], c8 = acc[8], c9 = acc[9], c10 = acc[10], c11 = acc[11];
    for (long kk = 0; kk < k; kk++) {
        const __m512 x = _mm512_maskz_loadu_ps(m, b + kk * ldb);
        const float *p = a0 + kk * 6, *q = a1 + kk * 6;
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(p[0]), x, c0); c1 = _mm512_fmadd_ps(_mm512_set1_ps(p[1]), x, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(p[2]), x, c2); c3 = _mm512_fmadd_ps(_mm512_set1_ps(p[3]), x, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(p[4]), x, c4); c5 = _mm512_fmadd_ps(_mm512_set1_ps(p[5]), x, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(q[0]), x, c6); c7 = _mm512_fmadd_ps(_mm512_set1_ps(q[1]), x, c7);
        c8 = _mm512_fmadd_ps(_mm512_set1_ps(q[2]), x, c8); c9 = _mm512_fmadd_ps(_mm512_set1_ps(q[3]), x, c9);
        c10 = _mm512_fmadd_ps(_mm512_set1_ps(q[4]), x, c10); c11 = _mm512_fmadd_ps(_mm512_set1_ps(q[5]), x, c11);
    }
    acc[0] = c0; acc[1] = c1; acc[2] = c2; acc[3] = c3; acc[4] = c4; acc[5] = c5;
    acc[6] = c6; acc[7] = c7; acc[8] = c8; acc[9] = c9; acc[10] = c10; acc[11] = c11;
    for (long r = 0; r < rows; r++) {
        const __m512 t = bias || act != VZ_ACT_IDENTITY ? vz_epilogue(acc[r], bias ? bias[r] : 0.0f, act) : acc[r];
        _mm512_mask_storeu_ps(c + r * ldc, m, t);
    }
}

// ---- Depthwise convolution, one plane, AVX-512 ----
//
// Sixteen output columns per vector. A tap's input columns that fall outside the row are masked off in the load
// (masked lanes read as 0 and never fault), so borders need neither a padded copy nor a scalar path, and a plane
// narrower than 16 columns (14×14, 7×7) runs the same code with its last lanes masked. Four output rows at a time:
// each input row is loaded once per tap column and feeds every output row whose window covers it; each output row
// sums into two accumulators (by input-row parity) so eight independent FMA chains hide the latency.

#define VZ_DW_ROWS 4

/// Lanes lo..<hi of a mask of width ≤ 32 (empty when hi ≤ lo).
static inline unsigned vz_lane_range(long lo, long hi) {
    if (lo < 0) lo = 0;
    if (hi > 32) hi = 32;
    if (hi <= lo) return 0;
    const unsigned long long bits = ((1ull << hi) - 1) & ~((1ull << lo) - 1);
    return (unsigned)bits;
}

__attribute__((target("avx512f"), always_inline))
static inline void vz_dw_plane(const float *x, float *y, const float *w, float bias, long inH, long inW,
                               long outH, long outW, long padTop, long padLeft, const int K, const int S, int act) {
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f), b = _mm512_set1_ps(bias);
    for (long ox0 = 0; ox0 < outW; ox0 += 16) {
        const long n = outW - ox0 < 16 ? outW - ox0 : 16;
        // Per tap column: which lanes read inside the row (stride 2: which of the 32 consecutive inputs).
        unsigned lanes[5];
        for (int kx = 0; kx < K; kx++) {
            const long base = ox0 * S + kx - padLeft;
            lanes[kx] = vz_lane_range(-base, (S == 1 ? n : 2 * n) < inW - base ? (S == 1 ? n : 2 * n) : inW - base);
        }
        for (long oy0 = 0; oy0 < outH; oy0 += VZ_DW_ROWS) {
            __m512 acc[VZ_DW_ROWS][2];
            for (int j = 0; j < VZ_DW_ROWS; j++) { acc[j][0] = b; acc[j][1] = zero; }
            // Fully unrolled, so every (row, tap) index is a constant and the accumulators stay in registers.
#pragma clang loop unroll(full)
            for (int r = 0; r < (VZ_DW_ROWS - 1) * S + K; r++) {
                const long iy = oy0 * S - padTop + r;
                if (iy < 0 || iy >= inH) continue;
                const float *row = x + iy * inW + ox0 * S - padLeft;
#pragma clang loop unroll(full)
                for (int kx = 0; kx < K; kx++) {
                    __m512 v;
                    if (S == 1) {
                        v = _mm512_maskz_loadu_ps((__mmask16)lanes[kx], row + kx);
                    } else {
                        const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(lanes[kx] & 0xFFFF), row + kx);
                        const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(lanes[kx] >> 16), row + kx + 16);
                        v = _mm512_permutex2var_ps(lo, evens, hi);
                    }
#pragma clang loop unroll(full)
                    for (int j = 0; j < VZ_DW_ROWS; j++) {
                        const int ky = r - j * S;
                        if (ky >= 0 && ky < K) acc[j][r & 1] = _mm512_fmadd_ps(_mm512_set1_ps(w[ky * K + kx]), v, acc[j][r & 1]);
                    }
                }
            }
            const __mmask16 store = (__mmask16)vz_lane_range(0, n);
            for (int j = 0; j < VZ_DW_ROWS && oy0 + j < outH; j++) {
                __m512 t = _mm512_add_ps(acc[j][0], acc[j][1]);
                if (act != VZ_ACT_IDENTITY) t = _mm512_max_ps(zero, t);
                if (act == VZ_ACT_RELU6) t = _mm512_min_ps(six, t);
                _mm512_mask_storeu_ps(y + (oy0 + j) * outW + ox0, store, t);
            }
        }
    }
}

__attribute__((target("avx512f")))
int vz_depthwise_plane_avx512(const float *x, float *y, const float *w, float bias, long inH, long inW,
                              long outH, long outW, long padTop, long padLeft, long k, long stride, int act) {
    if (k == 3 && stride == 1) vz_dw_plane(x, y, w, bias, inH, inW, outH, outW, padTop, padLeft, 3, 1, act);
    else if (k == 3 && stride == 2) vz_dw_plane(x, y, w, bias, inH, inW, outH, outW, padTop, padLeft, 3, 2, act);
    else if (k == 5 && stride == 1) vz_dw_plane(x, y, w, bias, inH, inW, outH, outW, padTop, padLeft, 5, 1, act);
    else if (k == 5 && stride == 2) vz_dw_plane(x, y, w, bias, inH, inW, outH, outW, padTop, padLeft, 5, 2, act);
    else return 0;
    return 1;
}

// ---- Activation codes for a backward pass that does not keep the activations ----
//
// Sixteen values a vector (the fused bottleneck that calls these runs on AVX-512 only); the codes are built as
// 32-bit lanes by masked moves and narrowed to bytes on the store, and read back widened, so only AVX-512F is used.

__attribute__((target("avx512f")))
void vz_activation_codes(const float *y, unsigned char *code, long count, int act) {
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2), three = _mm512_set1_epi32(3);
    for (long i = 0; i < count; i += 16) {
        const __mmask16 m = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, y + i);
        const __mmask16 above = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), low = _mm512_cmp_ps_mask(v, zero, _CMP_LE_OQ);
        const __mmask16 high = act == VZ_ACT_RELU6 ? (__mmask16)(above & _mm512_cmp_ps_mask(v, six, _CMP_GE_OQ)) : (__mmask16)0;
        __m512i c = three;                                   // unordered (NaN) unless one below says otherwise
        c = _mm512_mask_mov_epi32(c, low, one);
        c = _mm512_mask_mov_epi32(c, above, _mm512_setzero_si512());
        c = _mm512_mask_mov_epi32(c, high, two);
        _mm512_mask_cvtepi32_storeu_epi8(code + i, m, c);
    }
}

__attribute__((target("avx512f")))
void vz_mask_by_codes(float *g, const unsigned char *code, long count, int redirect) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
    long i = 0;
    for (; i + 16 <= count; i += 16) {
        const __m512i c = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + i)));
        const __m512 v = _mm512_loadu_ps(g + i);
        __mmask16 drop;
        if (!redirect) {
            drop = _mm512_test_epi32_mask(c, c);             // any nonzero code
        } else {
            drop = (__mmask16)((_mm512_cmpeq_epi32_mask(c, one) & _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ))
                             | (_mm512_cmpeq_epi32_mask(c, two) & _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ)));
        }
        _mm512_storeu_ps(g + i, _mm512_mask_mov_ps(v, drop, zero));
    }
    for (; i < count; i++) {
        const int drop = redirect ? ((code[i] == 1 && g[i] < 0.0f) || (code[i] == 2 && g[i] > 0.0f)) : code[i] != 0;
        if (drop) g[i] = 0.0f;
    }
}
