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

__attribute__((target("avx512f")))
void vz_tile_6x32_avx512(long k, const float *a, const float *b0, const float *b1, long ldb,
                         float *c, long ldc, long rows, long cols, const float *bias, int act) {
    const __mmask16 m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? (__mmask16)0xFFFF : cols > 16 ? (__mmask16)((1u << (cols - 16)) - 1) : 0;
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
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
    // The epilogue in registers, as Activation.apply does it in memory: t = acc + bias (0 without one: −0 + 0 is
    // +0 there too), then t < 0 ? 0 : t, then t > 6 ? 6 : t. max(0, t) and min(6, t) with the constant first
    // return t itself when t is NaN or ±0, as those selects do, so the bits are the same.
    if (bias || act != VZ_ACT_IDENTITY) {
        const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
        for (long r = 0; r < rows; r++) {
            const __m512 b = _mm512_set1_ps(bias ? bias[r] : 0.0f);
            for (int h = 0; h < 2; h++) {
                __m512 t = _mm512_add_ps(acc[2 * r + h], b);
                if (act != VZ_ACT_IDENTITY) t = _mm512_max_ps(zero, t);
                if (act == VZ_ACT_RELU6) t = _mm512_min_ps(six, t);
                acc[2 * r + h] = t;
            }
        }
    }
    for (long r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc[2 * r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc[2 * r + 1]);
    }
}
