/* The WaLLoC analysis on the CPU: packet transform (CDF 9/7, periodization) -> 1x1 linear
 * encoder -> Gaussian-CDF companding -> rounding, for a batch of signals, in one call.
 *
 * The transform is the lifting form of pywt's bior4.4 with mode="periodization" (the tests
 * compare it with PyWavelets): even samples s, odd samples d,
 *     d += A (s[k] + s[k+1]);  s += B (d[k-1] + d[k]);  d += G (s[k] + s[k+1]);
 *     s += D (d[k-1] + d[k]);  low = Z s;  high = -d / Z      (indices modulo n/2),
 * about half the multiply-adds of the convolution form. The scales Z and -1/Z of every level
 * are linear and are folded into the encoder's weights (each band's product of them), so
 * the lifting passes never multiply by them. Along the last axis each row is
 * lifted in a small buffer (all levels in L1); along the first axis rows are vectors and a
 * level only permutes row pointers (lows first), processed in column strips that stay in L2.
 *
 * Floating-point contraction is off and every sum has a fixed order, so the output does not
 * depend on thread count, process or SIMD width (the hot loops are compiled for several
 * instruction sets and picked at run time). Uses libm's erf (double) for the companding.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

static const float LA = -1.586134342059924f, LB = -0.052980118572961f,
                   LG = 0.882911075530934f, LD = 0.443506852043971f,
                   LZ = 1.1496043988602418f, LZH = -0.8698644516247808f; /* -1 / Z */

#define STRIP 256 /* columns per strip of the first-axis pass (H x 1 KiB: in L2) */

/* One lifting level along a contiguous segment x[0..n): lows to x[0..n/2), highs after.
 * s and d carry one halo sample each (s[h] = s[0], d[-1] = d[h-1]) so every step is one
 * branch-free, vectorisable loop. */
CLONES static void lift_segment(float *restrict x, int n, float *restrict s, float *restrict dd) {
    const int h = n / 2;
    float *restrict d = dd + 1;
    for (int k = 0; k < h; k++) { s[k] = x[2 * k]; d[k] = x[2 * k + 1]; }
    s[h] = s[0];
    for (int k = 0; k < h; k++) d[k] += LA * (s[k] + s[k + 1]);
    d[-1] = d[h - 1];
    for (int k = 0; k < h; k++) s[k] += LB * (d[k - 1] + d[k]);
    s[h] = s[0];
    for (int k = 0; k < h; k++) d[k] += LG * (s[k] + s[k + 1]);
    d[-1] = d[h - 1];
    for (int k = 0; k < h; k++) s[k] += LD * (d[k - 1] + d[k]);
    memcpy(x, s, sizeof(float) * h); /* the level's scales (Z, -1/Z) are folded into the */
    memcpy(x + h, d, sizeof(float) * h); /* encoder weights: see band_scale */
}

/* The full packet tree of `levels` along one row of n samples (in place). */
static void packet_row(float *x, int n, int levels, float *s, float *d) {
    for (int lev = 0; lev < levels; lev++) {
        const int seg = n >> lev;
        for (int b = 0; b < (1 << lev); b++) lift_segment(x + (size_t)b * seg, seg, s, d);
    }
}

/* y[0..w) += a * (p[0..w) + q[0..w)): one lifting step over a strip of a row. Full strips
 * have a compile-time width (no loop prologue or remainder). */
CLONES static void axpy2(float *restrict y, const float *restrict p, const float *restrict q,
                         float a, int w) {
    if (w == STRIP) {
        for (int j = 0; j < STRIP; j++) y[j] += a * (p[j] + q[j]);
    } else {
        for (int j = 0; j < w; j++) y[j] += a * (p[j] + q[j]);
    }
}

/* Predict/update pair of one level along the first axis, rows as vectors over a strip:
 *     d[k] += a (s[k] + s[k+1]);  s[k] += b (d[k-1] + d[k])     (row indices modulo h),
 * in one pass over k: d[h-1] is predicted first (from the original s[0]); then step k
 * predicts d[k] (s[k+1] is still original) and updates s[k] with d[k-1] and d[k]. */
static void lift_rows_pair(float **s, float **d, int h, int c0, int w, float a, float b) {
    axpy2(d[h - 1] + c0, s[h - 1] + c0, s[0] + c0, a, w);
    for (int k = 0; k < h; k++) {
        if (k < h - 1) axpy2(d[k] + c0, s[k] + c0, s[k + 1] + c0, a, w);
        axpy2(s[k] + c0, d[(k + h - 1) % h] + c0, d[k] + c0, b, w);
    }
}

/* One lifting level along the first axis for the rows rows[0..n) of one band, on columns
 * [c0, c0 + w); then the band's row pointers are reordered: lows first, then highs. */
static void lift_rows(float **rows, int n, int c0, int w, float **tmp) {
    const int h = n / 2;
    float **s = tmp, **d = tmp + h; /* s[k] = row 2k, d[k] = row 2k + 1 */
    for (int k = 0; k < h; k++) { s[k] = rows[2 * k]; d[k] = rows[2 * k + 1]; }
    if (h == 1) { /* two rows: every neighbour is the row itself */
        axpy2(d[0] + c0, s[0] + c0, s[0] + c0, LA, w); axpy2(s[0] + c0, d[0] + c0, d[0] + c0, LB, w);
        axpy2(d[0] + c0, s[0] + c0, s[0] + c0, LG, w); axpy2(s[0] + c0, d[0] + c0, d[0] + c0, LD, w);
        return;
    }
    lift_rows_pair(s, d, h, c0, w, LA, LB);
    lift_rows_pair(s, d, h, c0, w, LG, LD);
}

/* The packet tree along the first axis: returns the row order in `order` (band-major). */
static void packet_columns(float *plane, int H, int W, int levels, float **order, float **tmp,
                           float **work) {
    for (int c0 = 0; c0 < W; c0 += STRIP) {
        const int w = W - c0 < STRIP ? W - c0 : STRIP;
        for (int i = 0; i < H; i++) work[i] = plane + (size_t)i * W;
        for (int lev = 0; lev < levels; lev++) {
            const int seg = H >> lev;
            for (int b = 0; b < (1 << lev); b++) {
                float **rows = work + (size_t)b * seg;
                lift_rows(rows, seg, c0, w, tmp);
                memcpy(rows, tmp, sizeof(float *) * seg);
            }
        }
    }
    memcpy(order, work, sizeof(float *) * H); /* the same permutation for every strip */
}

#define SCRATCH_KEEP ((size_t)256 << 20)
enum { S_DATA, S_S, S_D, S_ORDER, S_TMP, S_WORK, S_X, S_ACC, S_SLOTS_ANALYSIS,
       S_SLOTS = S_SLOTS_ANALYSIS + 5 }; /* + the synthesis's slots (Y_*) */
#include "../_scratch.h"

typedef float vec __attribute__((vector_size(64))); /* 16 floats: 1 AVX-512, 2 AVX2 registers */
#define VW 16
#define OB 4 /* outputs per register block */

static inline vec load_vec(const float *p) { vec v; memcpy(&v, p, sizeof v); return v; }

/* acc[q][0..VW) = bias + sum_b wt[b][q] x[b][j0 .. j0 + VW), for OB outputs: the 1x1 encoder
 * as a register-blocked product (each x vector loaded once per OB multiply-adds). */
CLONES static void encoder_block(const float *const *x, int P, int j0, const float *wt,
                                 const float *bias, float *out, int stride) {
    vec a0 = (vec){0} + bias[0], a1 = (vec){0} + bias[1], a2 = (vec){0} + bias[2],
        a3 = (vec){0} + bias[3];
    for (int b = 0; b < P; b++) {
        const vec v = load_vec(x[b] + j0);
        const float *w = wt + (size_t)b * OB;
        a0 += w[0] * v; a1 += w[1] * v; a2 += w[2] * v; a3 += w[3] * v;
    }
    memcpy(out, &a0, sizeof a0); memcpy(out + stride, &a1, sizeof a1);
    memcpy(out + 2 * stride, &a2, sizeof a2); memcpy(out + 3 * stride, &a3, sizeof a3);
}

/* uint8 -> [-1/2, 1/2] exactly as signal.prepare does it in float32: (x - low) / span - 1/2 */
CLONES static void to_float_u8(float *restrict y, const uint8_t *restrict x, float low, float span,
                               int n) {
    for (int j = 0; j < n; j++) y[j] = ((float)x[j] - low) / span - 0.5f;
}

/* Product of the lifting scales along band b's path (first level most significant). */
static double band_scale(int b, int levels) {
    double g = 1.0;
    for (int lev = 0; lev < levels; lev++) g *= (b >> (levels - 1 - lev)) & 1 ? LZH : LZ;
    return g;
}

typedef struct {
    int C, H, W, levels, ndim, L, LB;
    const int32_t *max_symbol; /* [L]: each channel's largest code magnitude */
    const double *amplitude;   /* [L]: companding amplitude over each channel's step */
    const float *weight; /* [L / OB blocks][P][OB]: band scales folded in, zero-padded outputs */
    const float *bias;   /* [LB * OB] */
} Spec;

/* The packet transform of one signal (unscaled bands): rows of band (c, bh) in `order`. */
static void transform(const Spec *sp, const void *input, int is_u8, const float *low,
                      const float *span, float *data, float **order, float *s, float *d,
                      float **tmp, float **work) {
    const int C = sp->C, H = sp->H, W = sp->W, J = sp->levels;
    const size_t plane = (size_t)H * W;
    for (int c = 0; c < C; c++) {
        float *p = data + c * plane;
        for (int i = 0; i < H; i++) {
            float *row = p + (size_t)i * W;
            if (is_u8)
                to_float_u8(row, (const uint8_t *)input + c * plane + (size_t)i * W, low[c],
                            span[c], W);
            else
                memcpy(row, (const float *)input + c * plane + (size_t)i * W, sizeof(float) * W);
            packet_row(row, W, J, s, d);
        }
        if (sp->ndim == 2) packet_columns(p, H, W, J, order + (size_t)c * H, tmp, work);
        else order[c] = p;
    }
}

/* One signal (C planes) -> latents [L][h][w]. Returns 0, or -1 when out of memory. */
static int analyse_one(const Spec *sp, const void *input, int is_u8, const float *low,
                       const float *span, int32_t *out) {
    const int C = sp->C, H = sp->H, W = sp->W, J = sp->levels, L = sp->L;
    const int fh = sp->ndim == 2 ? 1 << J : 1, fw = 1 << J;
    const int h = H / fh, w = W / fw, P = C * fh * fw;
    const int wpad = (w + VW - 1) / VW * VW;
    const size_t plane = (size_t)H * W;
    float *data = scratch(S_DATA, sizeof(float) * (plane * C + VW)); /* slack: last vector load */
    float *s = scratch(S_S, sizeof(float) * (W / 2 + 2)), *d = scratch(S_D, sizeof(float) * (W / 2 + 2));
    float **order = scratch(S_ORDER, sizeof(float *) * (size_t)H * C);
    float **tmp = scratch(S_TMP, sizeof(float *) * (size_t)H);
    float **work = scratch(S_WORK, sizeof(float *) * (size_t)H);
    const float **x = scratch(S_X, sizeof(float *) * (size_t)P);
    float *acc = scratch(S_ACC, sizeof(float) * (size_t)sp->LB * OB * wpad);
    int rc = -1;
    if (!data || !s || !d || !order || !tmp || !work || !x || !acc) goto done;
    memset(data + plane * C, 0, sizeof(float) * VW);
    transform(sp, input, is_u8, low, span, data, order, s, d, tmp, work);
    const double inv_sqrt2 = 0.70710678118654752440;
    for (int i = 0; i < h; i++) {
        for (int c = 0, b = 0; c < C; c++)
            for (int bh = 0; bh < fh; bh++)
                for (int bw = 0; bw < fw; bw++, b++)
                    x[b] = order[(size_t)c * H + (size_t)bh * h + i] + (size_t)bw * w;
        for (int ob = 0; ob < sp->LB; ob++)
            for (int j0 = 0; j0 < w; j0 += VW)
                encoder_block(x, P, j0, sp->weight + (size_t)ob * P * OB, sp->bias + ob * OB,
                              acc + (size_t)ob * OB * wpad + j0, wpad);
        for (int o = 0; o < L; o++) {
            int32_t *dst = out + ((size_t)o * h + i) * w;
            const float *a = acc + (size_t)o * wpad;
            const double amp = sp->amplitude[o], ms = sp->max_symbol[o];
            for (int j = 0; j < w; j++) {
                double y = amp * erf((double)a[j] * inv_sqrt2);
                double r = nearbyint(y); /* round half to even, as torch.round */
                if (r > ms) r = ms;
                if (r < -ms) r = -ms;
                dst[j] = (int32_t)r;
            }
        }
    }
    rc = 0;
done:
    return rc;
}

/* Whether a buffer of `len` bytes holds exactly a * b * c * d bytes (false when the product
 * overflows: forged shapes must not wrap around to a small size). */
static int holds(Py_ssize_t len, size_t a, size_t b, size_t c, size_t d) {
    size_t n;
    if (__builtin_mul_overflow(a, b, &n) || __builtin_mul_overflow(n, c, &n)
        || __builtin_mul_overflow(n, d, &n))
        return 0;
    return len >= 0 && (size_t)len == n;
}

/* Whether (C, H, W, levels J, ndim nd) is no signal the packet transform takes: J in 1..12,
 * every signal axis a multiple of 2**J (a 1-D signal is one row, H = 1). */
static int bad_shape(int C, int H, int W, int J, int nd) {
    if (C < 1 || J < 1 || J > 12 || (nd != 1 && nd != 2) || H < 1 || W < 2) return 1;
    return H % (nd == 2 ? 1 << J : 1) || W % (1 << J) || (nd == 1 && H != 1);
}

/* analyse(x, is_u8, N, C, H, W, levels, ndim, low f32[C], span f32[C], weight f32[L*P],
 *         bias f32[L], amplitude f64[L], max_symbol i32[L], out i32[N*L*h*w]) -> None */
static PyObject *analyse(PyObject *self, PyObject *args) {
    Py_buffer x, scale, offset, weight, bias, amplitude, ms, out;
    int is_u8, N, C, H, W, J, nd;
    if (!PyArg_ParseTuple(args, "y*iiiiiiiy*y*y*y*y*y*w*", &x, &is_u8, &N, &C, &H, &W, &J, &nd,
                          &scale, &offset, &weight, &bias, &amplitude, &ms, &out))
        return NULL;
    PyObject *result = NULL;
    const int fh = nd == 2 ? 1 << J : 1, fw = 1 << J;
    if (N < 0 || bad_shape(C, H, W, J, nd)) {
        PyErr_SetString(PyExc_ValueError, "bad signal shape for the packet transform");
        goto done;
    }
    const size_t P = (size_t)C * fh * fw, plane = (size_t)H * W;
    const Py_ssize_t L = bias.len / 4;
    if (!holds(x.len, N, C, plane, is_u8 ? 1 : 4) || scale.len != 4 * C
        || offset.len != 4 * C || L < 1 || !holds(weight.len, 4, P, L, 1)
        || amplitude.len != 8 * L || ms.len != 4 * L
        || !holds(out.len, N, L, plane / (fh * fw), 4)) {
        PyErr_SetString(PyExc_ValueError, "buffer sizes do not match the shapes");
        goto done;
    }
    const int LB = (int)((L + OB - 1) / OB);
    float *wt = calloc((size_t)LB * OB * P, sizeof(float)), *bs = calloc((size_t)LB * OB, sizeof(float));
    if (!wt || !bs) { free(wt); free(bs); PyErr_NoMemory(); goto done; }
    for (Py_ssize_t o = 0; o < L; o++) {
        bs[o] = ((const float *)bias.buf)[o];
        for (int c = 0, b = 0; c < C; c++)
            for (int bh = 0; bh < fh; bh++)
                for (int bw = 0; bw < fw; bw++, b++) {
                    double g = band_scale(bw, J) * (nd == 2 ? band_scale(bh, J) : 1.0);
                    wt[((size_t)(o / OB) * P + b) * OB + o % OB] =
                        (float)(((const float *)weight.buf)[(size_t)o * P + b] * g);
                }
    }
    Spec sp = {C, H, W, J, nd, (int)L, LB, ms.buf, amplitude.buf, wt, bs};
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int n = 0; n < N && !rc; n++)
        rc = analyse_one(&sp, (const uint8_t *)x.buf + (size_t)n * C * plane * (is_u8 ? 1 : 4),
                         is_u8, scale.buf, offset.buf,
                         (int32_t *)out.buf + (size_t)n * L * plane / (fh * fw));
    scratch_done();
    Py_END_ALLOW_THREADS
    free(wt); free(bs);
    if (rc) PyErr_NoMemory();
    else result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&x); PyBuffer_Release(&scale); PyBuffer_Release(&offset);
    PyBuffer_Release(&weight); PyBuffer_Release(&bias); PyBuffer_Release(&amplitude);
    PyBuffer_Release(&ms); PyBuffer_Release(&out);
    return result;
}

/* packet(x f32[C*H*W], C, H, W, levels, ndim, out f32[C*fh*fw*h*w]) -> None: the packet
 * transform alone, bands in (c, band_h, band_w) order with their scales (for the tests). */
static PyObject *packet(PyObject *self, PyObject *args) {
    Py_buffer x, out;
    int C, H, W, J, nd;
    if (!PyArg_ParseTuple(args, "y*iiiiiw*", &x, &C, &H, &W, &J, &nd, &out)) return NULL;
    PyObject *result = NULL;
    const int fh = nd == 2 ? 1 << J : 1, fw = 1 << J;
    const size_t plane = (size_t)H * W;
    if (bad_shape(C, H, W, J, nd) || !holds(x.len, 4, C, plane, 1)
        || !holds(out.len, 4, C, plane, 1)) {
        PyErr_SetString(PyExc_ValueError, "bad shapes for the packet transform");
        goto done;
    }
    Spec sp = {C, H, W, J, nd, 0, 0, NULL, NULL, NULL, NULL};
    float *data = malloc(4 * C * plane), *s = malloc(4 * (W / 2 + 2)), *d = malloc(4 * (W / 2 + 2));
    float **order = malloc(sizeof(float *) * (size_t)H * C), **tmp = malloc(sizeof(float *) * H),
          **work = malloc(sizeof(float *) * H);
    if (data && s && d && order && tmp && work) {
        transform(&sp, x.buf, 0, NULL, NULL, data, order, s, d, tmp, work);
        const int h = H / fh, w = W / fw;
        float *o = out.buf;
        for (int c = 0; c < C; c++)
            for (int bh = 0; bh < fh; bh++)
                for (int bw = 0; bw < fw; bw++) {
                    const float g = (float)(band_scale(bw, J) * (nd == 2 ? band_scale(bh, J) : 1.0));
                    for (int i = 0; i < h; i++)
                        for (int j = 0; j < w; j++)
                            *o++ = g * order[(size_t)c * H + (size_t)bh * h + i][(size_t)bw * w + j];
                }
        result = Py_NewRef(Py_None);
    } else {
        PyErr_NoMemory();
    }
    free(data); free(s); free(d); free(order); free(tmp); free(work);
done:
    PyBuffer_Release(&x); PyBuffer_Release(&out);
    return result;
}

/* ---- synthesis: the inverse packet transform (decoding) --------------------------------
 * The lifting steps of the analysis undone in reverse order, band scales divided out as the
 * bands are gathered: along the first axis rows are vectors again (pointer permutations per
 * level, column strips in L2), along the last axis each row is unlifted in a small buffer.
 * Not bit-identical to torch's convolution form (float32 rounding differs, below 1e-6 of
 * the range); the codec uses it for decoding on the CPU, never for error-bounded streams. */

/* One level along a segment x[0..n) holding lows then highs: undone, samples interleaved. */
CLONES static void unlift_segment(float *restrict x, int n, float *restrict s,
                                  float *restrict dd) {
    const int h = n / 2;
    float *restrict d = dd + 1;
    memcpy(s, x, sizeof(float) * h);
    memcpy(d, x + h, sizeof(float) * h);
    d[-1] = d[h - 1];
    for (int k = 0; k < h; k++) s[k] -= LD * (d[k - 1] + d[k]);
    s[h] = s[0];
    for (int k = 0; k < h; k++) d[k] -= LG * (s[k] + s[k + 1]);
    d[-1] = d[h - 1];
    for (int k = 0; k < h; k++) s[k] -= LB * (d[k - 1] + d[k]);
    s[h] = s[0];
    for (int k = 0; k < h; k++) d[k] -= LA * (s[k] + s[k + 1]);
    for (int k = 0; k < h; k++) { x[2 * k] = s[k]; x[2 * k + 1] = d[k]; }
}

/* The inverse packet tree along one row of n samples (in place). */
static void unpacket_row(float *x, int n, int levels, float *s, float *d) {
    for (int lev = levels - 1; lev >= 0; lev--) {
        const int seg = n >> lev;
        for (int b = 0; b < (1 << lev); b++) unlift_segment(x + (size_t)b * seg, seg, s, d);
    }
}

/* Undo lift_rows_pair (coefficients a, b) over a strip:
 *     s[k] -= b (d[k-1] + d[k]);  d[k] -= a (s[k] + s[k+1])      (row indices modulo h),
 * in one pass: step k restores s[k] (d[k-1], d[k] still lifted), then d[k-1] (s[k-1], s[k]
 * restored); d[h-1] last, with the restored s[0]. */
static void unlift_rows_pair(float **s, float **d, int h, int c0, int w, float a, float b) {
    axpy2(s[0] + c0, d[h - 1] + c0, d[0] + c0, -b, w);
    for (int k = 1; k < h; k++) {
        axpy2(s[k] + c0, d[k - 1] + c0, d[k] + c0, -b, w);
        axpy2(d[k - 1] + c0, s[k - 1] + c0, s[k] + c0, -a, w);
    }
    axpy2(d[h - 1] + c0, s[h - 1] + c0, s[0] + c0, -a, w);
}

/* Undo one level along the first axis for rows[0..n) (lows first, then highs) on columns
 * [c0, c0 + w); the caller interleaves the row pointers afterwards. */
static void unlift_rows(float **rows, int n, int c0, int w) {
    const int h = n / 2;
    float **s = rows, **d = rows + h;
    if (h == 1) {
        axpy2(s[0] + c0, d[0] + c0, d[0] + c0, -LD, w); axpy2(d[0] + c0, s[0] + c0, s[0] + c0, -LG, w);
        axpy2(s[0] + c0, d[0] + c0, d[0] + c0, -LB, w); axpy2(d[0] + c0, s[0] + c0, s[0] + c0, -LA, w);
        return;
    }
    unlift_rows_pair(s, d, h, c0, w, LG, LD);
    unlift_rows_pair(s, d, h, c0, w, LA, LB);
}

/* The inverse packet tree along the first axis: work[r] starts at band-major row r and ends
 * at signal row r (pointer permutations; the data stays where it is). */
static void unpacket_columns(float **work, int H, int W, int levels, float **tmp) {
    for (int lev = levels - 1; lev >= 0; lev--) {
        const int seg = H >> lev, h = seg / 2;
        for (int b = 0; b < (1 << lev); b++) {
            float **rows = work + (size_t)b * seg;
            for (int c0 = 0; c0 < W; c0 += STRIP)
                unlift_rows(rows, seg, c0, W - c0 < STRIP ? W - c0 : STRIP);
            for (int k = 0; k < h; k++) { tmp[2 * k] = rows[k]; tmp[2 * k + 1] = rows[h + k]; }
            memcpy(rows, tmp, sizeof(float *) * seg);
        }
    }
}

enum { Y_DATA = S_SLOTS_ANALYSIS, Y_S, Y_D, Y_WORK, Y_TMP, Y_END };
_Static_assert((int)Y_END <= (int)S_SLOTS, "the synthesis's scratch slots must fit in S_SLOTS");

/* One signal: bands y (torch channel order, `index` maps (c, bh, bw) to a channel) ->
 * out[C][H][W]. Returns 0, or -1 when out of memory. */
static int synthesise_one(const float *y, int C, int H, int W, int J, int nd,
                          const int32_t *index, float *out) {
    const int fh = nd == 2 ? 1 << J : 1, fw = 1 << J, h = H / fh, w = W / fw;
    const size_t plane = (size_t)H * W, band = (size_t)h * w;
    float *data = scratch(Y_DATA, sizeof(float) * plane);
    float *s = scratch(Y_S, sizeof(float) * (W / 2 + 2)), *d = scratch(Y_D, sizeof(float) * (W / 2 + 2));
    float **work = scratch(Y_WORK, sizeof(float *) * (size_t)H);
    float **tmp = scratch(Y_TMP, sizeof(float *) * (size_t)H);
    if (!data || !s || !d || !work || !tmp) return -1;
    for (int c = 0; c < C; c++) {
        for (int bh = 0; bh < fh; bh++)
            for (int bw = 0; bw < fw; bw++) {
                const double g = band_scale(bw, J) * (nd == 2 ? band_scale(bh, J) : 1.0);
                const float inv = (float)(1.0 / g);
                const float *src = y + (size_t)index[(c * fh + bh) * fw + bw] * band;
                for (int i = 0; i < h; i++) {
                    float *dst = data + (size_t)(bh * h + i) * W + (size_t)bw * w;
                    for (int j = 0; j < w; j++) dst[j] = inv * src[(size_t)i * w + j];
                }
            }
        for (int r = 0; r < H; r++) work[r] = data + (size_t)r * W;
        if (nd == 2) unpacket_columns(work, H, W, J, tmp);
        float *o = out + (size_t)c * plane;
        for (int r = 0; r < H; r++) {
            float *row = o + (size_t)r * W;
            memcpy(row, work[r], sizeof(float) * W);
            unpacket_row(row, W, J, s, d);
        }
    }
    return 0;
}

/* synthesise(y f32[N*P*h*w], N, C, H, W, levels, ndim, index i32[P], out f32[N*C*H*W]) ->
 * None: the inverse packet transform of N items (P = C * fh * fw bands each). */
static PyObject *synthesise(PyObject *self, PyObject *args) {
    Py_buffer y, index, out;
    int N, C, H, W, J, nd;
    if (!PyArg_ParseTuple(args, "y*iiiiiiy*w*", &y, &N, &C, &H, &W, &J, &nd, &index, &out))
        return NULL;
    PyObject *result = NULL;
    const int fh = nd == 2 ? 1 << J : 1, fw = 1 << J;
    if (N < 0 || bad_shape(C, H, W, J, nd)) {
        PyErr_SetString(PyExc_ValueError, "bad signal shape for the packet transform");
        goto done;
    }
    const size_t P = (size_t)C * fh * fw, plane = (size_t)H * W;
    if (!holds(y.len, 4, N, C, plane) || !holds(out.len, 4, N, C, plane)
        || !holds(index.len, 4, P, 1, 1)) {
        PyErr_SetString(PyExc_ValueError, "buffer sizes do not match the shapes");
        goto done;
    }
    /* a private copy, checked once: the caller's array could change while the GIL is free */
    int32_t *band_index = malloc(sizeof(int32_t) * P);
    if (!band_index) { PyErr_NoMemory(); goto done; }
    memcpy(band_index, index.buf, sizeof(int32_t) * P);
    for (size_t b = 0; b < P; b++) {
        if (band_index[b] < 0 || (size_t)band_index[b] >= P) {
            free(band_index);
            PyErr_SetString(PyExc_ValueError, "band index out of range");
            goto done;
        }
    }
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int n = 0; n < N && !rc; n++)
        rc = synthesise_one((const float *)y.buf + (size_t)n * C * plane, C, H, W, J, nd,
                            band_index, (float *)out.buf + (size_t)n * C * plane);
    scratch_done();
    Py_END_ALLOW_THREADS
    free(band_index);
    if (rc) PyErr_NoMemory();
    else result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&y); PyBuffer_Release(&index); PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"packet", packet, METH_VARARGS, "The packet transform alone (float32), for tests."},
    {"analyse", analyse, METH_VARARGS, "Signals -> integer latents (transform, encoder, rounding)."},
    {"synthesise", synthesise, METH_VARARGS, "Packet bands -> signals (the inverse transform)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_analysis", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__analysis(void) { return PyModule_Create(&module); }
