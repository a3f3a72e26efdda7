/* Native latent coder of the .wlc format 2: context modelling, prediction and rANS in C.
 *
 * One call codes a whole stream (all latent channels), or a batch of streams, with the GIL
 * released. The arithmetic is integer-only, so the words are the same on every platform.
 *
 * rANS: two interleaved 32-bit states, 16-bit words, 16-bit frequency precision (the frozen
 * tables' own integers, no rescaling). Operation i of a stream (in decoding order) uses state
 * i & 1. The stream is: state 0 (2 words, low first), state 1, then the renormalisation words
 * in decoding order. The encoder starts both states at RANS_L and the decoder checks that it
 * ends there with every word consumed, so truncation or corruption is detected.
 *
 * Decoding order: one uniform symbol per latent channel (its prediction mode; none when the
 * model offers one mode), then the channels in the tables' order, each in raster order. A
 * symbol's table is chosen by its context (the quantised 3x3 / 3-sample box sum of the
 * residual magnitudes of the channels before it, replicated at the edges); an escape symbol
 * is followed at once by its tail symbol.
 *
 * The contextual model (tables with a neighbour weight nbw > 0, entropy model "contextual")
 * adds the channel's own decoded neighbours: a symbol's context is the lookup of
 * box energy + nbw * (sum of the residual magnitudes of its causal neighbours in the same
 * channel: t-1 .. t-8 in 1D; left, up-left, up and up-right in 2D, zero outside). The
 * encoder chooses each channel's mode with the contexts that mode's residuals give.
 * The Python reference in tests/entropy/rans_reference.py
 * documents the same procedure in numpy terms and is tested to give the same words.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "the .wlc payload words are little-endian; this kernel reads them natively"
#endif

#define PREC 16
#define TOTAL (1u << PREC)
#define RANS_L (1u << 16)
#define BUCKET_SHIFT 8
#define BUCKETS (TOTAL >> BUCKET_SHIFT)
#define MAX_MODES 4

enum { OK = 0, E_WORDS = 1, E_RANGE = 2, E_LEFT = 3, E_STATE = 4, E_MEMORY = 5 };

/* One symbol of one table, ready for the encoder: x / freq as a multiply (see enc_put). */
typedef struct {
    uint64_t rcp;
    uint32_t start;
    uint16_t freq_m1; /* freq - 1 (freq may be 2**16) */
    uint8_t shift;
    uint8_t pad;
} EncSym;

typedef struct {
    int channels, modes, contexts, ndim, max_symbol, core_stride, tail_stride, lut_stride;
    int nbw;            /* neighbour weight of the contextual model; 0: format 2's model */
    int order[1024];
    int radius[MAX_MODES], esc[MAX_MODES], size[MAX_MODES], tail_size[MAX_MODES];
    uint32_t *cum;      /* [C][M][K][core_stride + 1] */
    uint16_t *bucket;   /* [C][M][K][BUCKETS] */
    int32_t *full_cost; /* [C][M][K][2 * max radius + 1]: cost of each residual, tail included */
    EncSym *enc;        /* [C][M][K][core_stride] */
    EncSym *tail_enc;   /* [C][M][tail_stride] */
    int full_stride;
    uint32_t *tail_cum; /* [C][M][tail_stride + 1] */
    uint16_t *tail_bucket;
    uint8_t *lut;       /* [C][lut_stride] */
    int32_t lut_len[1024];
} Tables;

/* ---------------------------------------------------------------- scratch */

#define SCRATCH_KEEP ((size_t)64 << 20)
enum { S_OPS, S_WORDS, S_TOTAL, S_COLSUM, S_ZEROS, S_K, S_ALIGN, S_ENERGY, S_MAG, S_K2, S_SLOTS };
#include "../_scratch.h"

/* ---------------------------------------------------------------- tables */

/* x / f for every x < 2**32 and f <= 2**16 as a multiply: rcp = ceil(2**(32 + l) / f) with
 * l = ceil(log2 f) (Granlund & Montgomery); the rounding error stays below 1 / f, so the
 * quotient is exact (checked exhaustively near every multiple in the tests' C helper). */
static EncSym make_sym(uint32_t start, uint32_t f) {
    EncSym e;
    uint32_t l = 0;
    while ((1u << l) < f) l++;
    unsigned __int128 num = (unsigned __int128)1 << (32 + l);
    e.rcp = (uint64_t)((num + f - 1) / f);
    e.shift = (uint8_t)(32 + l);
    e.start = start;
    e.freq_m1 = (uint16_t)(f - 1);
    e.pad = 0;
    return e;
}

static void build_bucket(const uint32_t *cum, int size, uint16_t *bucket) {
    int s = 0;
    for (uint32_t b = 0; b < BUCKETS; b++) {
        uint32_t slot = b << BUCKET_SHIFT;
        while (s + 1 < size && cum[s + 1] <= slot) s++;
        bucket[b] = (uint16_t)s;
    }
}

static void tables_free(PyObject *capsule) {
    Tables *t = (Tables *)PyCapsule_GetPointer(capsule, "walloc_io.rans.Tables");
    if (!t) return;
    free(t->cum); free(t->bucket); free(t->full_cost); free(t->enc); free(t->tail_enc);
    free(t->tail_cum); free(t->tail_bucket); free(t->lut);
    free(t);
}

static int need(Py_buffer *b, Py_ssize_t items, Py_ssize_t itemsize, const char *name) {
    if (b->len != items * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", name,
                     items * itemsize, b->len);
        return 0;
    }
    return 1;
}

/* make_tables(channels, modes, contexts, ndim, max_symbol, order:i32[C], radius:i32[M],
 *             freq:i32[C,M,K,S], tail:i32[C,M,T], cost:i32[C,M,K,S], tail_cost:i32[C,M,T],
 *             lut:u8[C,L], lut_len:i32[C], S, T, L, nbw) -> capsule */
static PyObject *make_tables(PyObject *self, PyObject *args) {
    int C, M, K, nd, ms, S, T, L, nbw;
    Py_buffer order, radius, freq, tail, cost, tcost, lut, lutlen;
    if (!PyArg_ParseTuple(args, "iiiiiy*y*y*y*y*y*y*y*iiii", &C, &M, &K, &nd, &ms, &order,
                          &radius, &freq, &tail, &cost, &tcost, &lut, &lutlen, &S, &T, &L, &nbw))
        return NULL;
    PyObject *result = NULL;
    Tables *t = NULL;
    if (C < 1 || C > 1024 || (M != 1 && M != 2 && M != 4) || K < 1 || K > 256 || (nd != 1 && nd != 2)
        || S < 1 || S > 65535 || T < 1 || T > 65535 || L < 1 || nbw < 0 || nbw > 256) {
        PyErr_SetString(PyExc_ValueError, "table dimensions out of range");
        goto done;
    }
    if (!need(&order, C, 4, "order") || !need(&radius, M, 4, "radius")
        || !need(&freq, (Py_ssize_t)C * M * K * S, 4, "freq")
        || !need(&tail, (Py_ssize_t)C * M * T, 4, "tail")
        || !need(&cost, (Py_ssize_t)C * M * K * S, 4, "cost")
        || !need(&tcost, (Py_ssize_t)C * M * T, 4, "tail_cost")
        || !need(&lut, (Py_ssize_t)C * L, 1, "lut") || !need(&lutlen, C, 4, "lut_len"))
        goto done;
    t = calloc(1, sizeof(Tables));
    if (!t) { PyErr_NoMemory(); goto done; }
    t->channels = C; t->modes = M; t->contexts = K; t->ndim = nd; t->max_symbol = ms;
    t->core_stride = S; t->tail_stride = T; t->lut_stride = L; t->nbw = nbw;
    memcpy(t->order, order.buf, 4 * C);
    memcpy(t->lut_len, lutlen.buf, 4 * C);
    for (int m = 0; m < M; m++) {
        int r = ((int32_t *)radius.buf)[m];
        int e = r < 15 ? r : 15;
        t->radius[m] = r; t->esc[m] = e;
        t->size[m] = e == r ? 2 * e + 1 : 2 * e + 3;
        t->tail_size[m] = r - e;
        if (t->size[m] > S || (e < r && t->tail_size[m] > T)) {
            PyErr_SetString(PyExc_ValueError, "alphabet larger than the table stride");
            goto fail;
        }
    }
    size_t nt = (size_t)C * M * K, nc = (size_t)C * M;
    t->cum = malloc(nt * (S + 1) * 4);
    t->bucket = malloc(nt * BUCKETS * 2);
    t->tail_cum = malloc(nc * (T + 1) * 4);
    t->tail_bucket = malloc(nc * BUCKETS * 2);
    t->lut = malloc((size_t)C * L);
    if (!t->cum || !t->bucket || !t->tail_cum || !t->tail_bucket
        || !t->lut) { PyErr_NoMemory(); goto fail; }
    int rmax = 0;
    for (int m = 0; m < M; m++) rmax = t->radius[m] > rmax ? t->radius[m] : rmax;
    t->full_stride = 2 * rmax + 1;
    t->full_cost = malloc(nt * t->full_stride * 4);
    if (!t->full_cost) { PyErr_NoMemory(); goto fail; }
    for (size_t i = 0; i < nt; i++) {
        const int m = (int)((i / K) % M), e = t->esc[m], r = t->radius[m];
        const int32_t *row = (const int32_t *)cost.buf + i * S;
        const int32_t *tc = (const int32_t *)tcost.buf + (i / K) * T;
        int32_t *full = t->full_cost + i * t->full_stride;
        for (int v = -rmax; v <= rmax; v++) {
            int32_t c;
            if (v < -r || v > r) c = 0; /* unreachable residuals */
            else if (e == r) c = row[v + r];
            else if (v > e) c = row[2 * e + 2] + tc[v - e - 1];
            else if (v < -e) c = row[0] + tc[-v - e - 1];
            else c = row[v + e + 1];
            full[v + rmax] = c;
        }
    }
    memcpy(t->lut, lut.buf, (size_t)C * L);
    for (int c = 0; c < C; c++) {
        if (t->order[c] < 0 || t->order[c] >= C || t->lut_len[c] < 1 || t->lut_len[c] > L) {
            PyErr_SetString(PyExc_ValueError, "bad channel order or context table");
            goto fail;
        }
    }
    for (size_t i = 0; i < nt + nc; i++) {
        int is_tail = i >= nt;
        int m = (int)((is_tail ? i - nt : i / K) % M);
        int size = is_tail ? t->tail_size[m] : t->size[m];
        int stride = is_tail ? T : S;
        const int32_t *f = (const int32_t *)(is_tail ? tail.buf : freq.buf) + (is_tail ? i - nt : i) * stride;
        uint32_t *cum = is_tail ? t->tail_cum + (i - nt) * (T + 1) : t->cum + i * (S + 1);
        uint32_t acc = 0;
        if (is_tail && t->esc[m] == t->radius[m]) size = 0; /* no escapes: unused */
        for (int s = 0; s <= stride; s++) {
            cum[s] = s < size ? acc : TOTAL;
            if (s < size) {
                if (f[s] < 1 || f[s] > (int32_t)TOTAL) {
                    PyErr_SetString(PyExc_ValueError, "table frequency out of range");
                    goto fail;
                }
                acc += (uint32_t)f[s];
            }
        }
        if (size && acc != TOTAL) {
            PyErr_SetString(PyExc_ValueError, "table frequencies do not sum to 2**16");
            goto fail;
        }
        build_bucket(cum, size ? size : 1,
                     is_tail ? t->tail_bucket + (i - nt) * BUCKETS : t->bucket + i * BUCKETS);
    }
    t->enc = malloc(nt * S * sizeof(EncSym));
    t->tail_enc = malloc(nc * T * sizeof(EncSym));
    if (!t->enc || !t->tail_enc) { PyErr_NoMemory(); goto fail; }
    for (size_t i = 0; i < nt; i++)
        for (int sy = 0; sy < S; sy++) {
            const uint32_t *cum = t->cum + i * (S + 1);
            uint32_t f = cum[sy + 1] - cum[sy];
            t->enc[i * S + sy] = make_sym(cum[sy], f ? f : 1);
        }
    for (size_t i = 0; i < nc; i++)
        for (int sy = 0; sy < T; sy++) {
            const uint32_t *cum = t->tail_cum + i * (T + 1);
            uint32_t f = cum[sy + 1] - cum[sy];
            t->tail_enc[i * T + sy] = make_sym(cum[sy], f ? f : 1);
        }
    result = PyCapsule_New(t, "walloc_io.rans.Tables", tables_free);
    if (result) t = NULL;
fail:
    if (t) {
        PyObject *tmp = PyCapsule_New(t, "walloc_io.rans.Tables", NULL);
        if (tmp) { tables_free(tmp); Py_DECREF(tmp); }
        else free(t);
    }
done:
    PyBuffer_Release(&order); PyBuffer_Release(&radius); PyBuffer_Release(&freq);
    PyBuffer_Release(&tail); PyBuffer_Release(&cost); PyBuffer_Release(&tcost);
    PyBuffer_Release(&lut); PyBuffer_Release(&lutlen);
    return result;
}

/* ---------------------------------------------------------------- contexts */

/* k[i] for every position of the next channel, from the running magnitude totals; or, with
 * `en`, the box energies themselves (the contextual model looks them up per symbol). */
static void contexts(const Tables *t, int c, const int32_t *total, int h, int w, uint8_t *k,
                     int32_t *en, int32_t *colsum) {
    const uint8_t *lut = t->lut + (size_t)c * t->lut_stride;
    const int32_t top = t->lut_len[c] - 1;
    for (int i = 0; i < h; i++) {
        if (t->ndim == 2) {
            const int32_t *up = total + (size_t)(i > 0 ? i - 1 : 0) * w;
            const int32_t *mid = total + (size_t)i * w;
            const int32_t *dn = total + (size_t)(i + 1 < h ? i + 1 : h - 1) * w;
            for (int j = 0; j < w; j++) colsum[j + 1] = up[j] + mid[j] + dn[j];
        } else {
            memcpy(colsum + 1, total + (size_t)i * w, 4 * (size_t)w);
        }
        colsum[0] = colsum[1];
        colsum[w + 1] = colsum[w];
        if (en) {
            int32_t *ei = en + (size_t)i * w;
            for (int j = 0; j < w; j++) ei[j] = colsum[j] + colsum[j + 1] + colsum[j + 2];
            continue;
        }
        uint8_t *ki = k + (size_t)i * w;
        for (int j = 0; j < w; j++) {
            int32_t e = colsum[j] + colsum[j + 1] + colsum[j + 2];
            ki[j] = lut[e < top ? e : top];
        }
    }
}

/* ---------------------------------------------------------------- decoder */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE int32_t predicted(const int mode, int32_t left, int32_t up, int32_t ul) {
    switch (mode) {
    case 1: return left;
    case 2: return up;
    case 3: return left + up - ul;
    default: return 0;
    }
}

/* The decoder's state: the current rANS state is always `cur`; after each symbol the two
 * states swap (a register rename), which is operation i using state i & 1. */
typedef struct {
    const uint16_t *ptr, *end;
    uint32_t cur, oth;
    int bad;
} Dec;

ALWAYS_INLINE uint32_t dec_sym(Dec *d, const uint32_t *cum, const uint16_t *bucket) {
    uint32_t x = d->cur;
    uint32_t slot = x & (TOTAL - 1);
    uint32_t s = bucket[slot >> BUCKET_SHIFT];
    while (cum[s + 1] <= slot) s++;
    x = (cum[s + 1] - cum[s]) * (x >> PREC) + slot - cum[s];
    if (x < RANS_L) {
        if (d->ptr < d->end) x = (x << 16) | *d->ptr++;
        else d->bad = 1;
    }
    d->cur = d->oth;
    d->oth = x;
    return s;
}

typedef struct {
    const uint32_t *cum, *tcum;
    const uint16_t *bucket, *tbucket;
    int stride, e, offset, last, escapes, max_symbol;
} Channel;

/* One residual under context kk's table: its core symbol, and the tail of an escape. */
ALWAYS_INLINE int32_t dec_residual(Dec *d, const Channel *ch, const int kk) {
    int32_t s = (int32_t)dec_sym(d, ch->cum + (size_t)kk * (ch->stride + 1),
                                 ch->bucket + ((size_t)kk << (PREC - BUCKET_SHIFT)));
    if (ch->escapes && (s == 0 || s == ch->last)) {
        int32_t tail = (int32_t)dec_sym(d, ch->tcum, ch->tbucket) + ch->e + 1;
        return s == 0 ? -tail : tail;
    }
    return s - ch->offset;
}

ALWAYS_INLINE int decode_channel(Dec *d, const Channel *ch, const int mode, const uint8_t *k,
                                 int32_t *x, int32_t *total, const int32_t *zeros, int h, int w) {
    const int ms = ch->max_symbol;
    for (int i = 0; i < h; i++) {
        const int32_t *up = i ? x + (size_t)(i - 1) * w : zeros;
        int32_t *xi = x + (size_t)i * w, *ti = total + (size_t)i * w;
        const uint8_t *ki = k + (size_t)i * w;
        int32_t left = 0, ul = 0;
        for (int j = 0; j < w; j++) {
            const int kk = ki[j];
            const int32_t v = dec_residual(d, ch, kk);
            const int32_t u = up[j];
            const int32_t val = v + predicted(mode, left, u, ul);
            if (val > ms || val < -ms) return E_RANGE;
            xi[j] = val;
            ti[j] += v < 0 ? -v : v;
            ul = u;
            left = val;
        }
    }
    return d->bad ? E_WORDS : OK;
}

#define TAPS_1D 8 /* the contextual model's causal window in 1D: t-1 .. t-8 */

/* The causal same-channel neighbour sum of the contextual model at (i, j): in 1D `win`,
 * the running sum of the last TAPS_1D magnitudes; in 2D left (`ml`) plus up-left, up and
 * up-right from `mup` (the row above, zeros for row 0). */
ALWAYS_INLINE int32_t neighbours(const int nd, const int32_t *mup, int32_t ml, int32_t win,
                                 int j, int w) {
    if (nd == 1) return win;
    return ml + (j ? mup[j - 1] : 0) + mup[j] + (j + 1 < w ? mup[j + 1] : 0);
}

ALWAYS_INLINE int decode_channel_ctx(Dec *d, const Channel *ch, const int mode, const int nd,
                                     const int32_t *en, const uint8_t *lut, const int32_t top,
                                     const int32_t nbw, int32_t *x, int32_t *total, int32_t *mag,
                                     const int32_t *zeros, int h, int w) {
    const int ms = ch->max_symbol;
    for (int i = 0; i < h; i++) {
        const int32_t *up = i ? x + (size_t)(i - 1) * w : zeros;
        const int32_t *mup = i ? mag + (size_t)(i - 1) * w : zeros;
        int32_t *xi = x + (size_t)i * w, *ti = total + (size_t)i * w, *mi = mag + (size_t)i * w;
        int32_t *ei = en + (size_t)i * w;
        if (nd == 2 && i) /* the row above is decoded: fold its part in before the row */
            for (int j = 0; j < w; j++) ei[j] += nbw * neighbours(2, mup, 0, 0, j, w);
        int32_t left = 0, ul = 0, ml = 0, win = 0;
        for (int j = 0; j < w; j++) {
            const int32_t energy = ei[j] + nbw * (nd == 1 ? win : ml);
            const int kk = lut[energy < top ? energy : top];
            const int32_t v = dec_residual(d, ch, kk);
            const int32_t u = up[j];
            const int32_t val = v + predicted(mode, left, u, ul);
            if (val > ms || val < -ms) return E_RANGE;
            xi[j] = val;
            const int32_t a = v < 0 ? -v : v;
            ti[j] += a;
            mi[j] = a;
            if (nd == 1) {
                win += a;
                if (j >= TAPS_1D) win -= mi[j - TAPS_1D];
            }
            ml = a;
            ul = u;
            left = val;
        }
    }
    return d->bad ? E_WORDS : OK;
}

static int decode_stream(const Tables *t, const uint8_t *payload, size_t bytes, int h, int w,
                         int32_t *out, int32_t *total, uint8_t *k, int32_t *colsum,
                         const int32_t *zeros, int32_t *en, int32_t *mag) {
    if (bytes % 2 || bytes < 8) return E_WORDS;
    Dec d;
    uint32_t head[2];
    memcpy(head, payload, 8);
    if (head[0] < RANS_L || head[1] < RANS_L) return E_STATE;
    d.cur = head[0]; d.oth = head[1];
    d.ptr = (const uint16_t *)payload + 4; d.end = (const uint16_t *)payload + bytes / 2;
    d.bad = 0;
    const int C = t->channels, M = t->modes, K = t->contexts, S = t->core_stride, T = t->tail_stride;
    const size_t n = (size_t)h * w;
    int modes[1024];
    if (M > 1) {
        uint32_t ucum[MAX_MODES + 1];
        uint16_t ubucket[BUCKETS];
        for (int m = 0; m <= M; m++) ucum[m] = m < M ? (uint32_t)(TOTAL / M) * m : TOTAL;
        build_bucket(ucum, M, ubucket);
        for (int c = 0; c < C; c++) modes[c] = (int)dec_sym(&d, ucum, ubucket);
    } else {
        memset(modes, 0, sizeof(int) * C);
    }
    memset(total, 0, 4 * n);
    for (int ci = 0; ci < C; ci++) {
        const int c = t->order[ci], m = modes[ci];
        const size_t cm = (size_t)c * M + m;
        if (t->nbw) contexts(t, c, total, h, w, NULL, en, colsum);
        else contexts(t, c, total, h, w, k, NULL, colsum);
        const int e = t->esc[m], r = t->radius[m];
        const Channel ch = {t->cum + cm * K * (S + 1), t->tail_cum + cm * (T + 1),
                            t->bucket + cm * K * BUCKETS, t->tail_bucket + cm * BUCKETS,
                            S, e, e < r ? e + 1 : r, t->size[m] - 1, e < r, t->max_symbol};
        int32_t *x = out + (size_t)c * n;
        int rc;
        if (t->nbw) {
            const uint8_t *lut = t->lut + (size_t)c * t->lut_stride;
            const int32_t top = t->lut_len[c] - 1;
            if (t->ndim == 1) {
                switch (m) {
                case 0: rc = decode_channel_ctx(&d, &ch, 0, 1, en, lut, top, t->nbw, x, total, mag, zeros, h, w); break;
                default: rc = decode_channel_ctx(&d, &ch, 1, 1, en, lut, top, t->nbw, x, total, mag, zeros, h, w); break;
                }
            } else {
                switch (m) {
                case 0: rc = decode_channel_ctx(&d, &ch, 0, 2, en, lut, top, t->nbw, x, total, mag, zeros, h, w); break;
                case 1: rc = decode_channel_ctx(&d, &ch, 1, 2, en, lut, top, t->nbw, x, total, mag, zeros, h, w); break;
                case 2: rc = decode_channel_ctx(&d, &ch, 2, 2, en, lut, top, t->nbw, x, total, mag, zeros, h, w); break;
                default: rc = decode_channel_ctx(&d, &ch, 3, 2, en, lut, top, t->nbw, x, total, mag, zeros, h, w); break;
                }
            }
            if (rc) return rc;
            continue;
        }
        switch (m) {
        case 0: rc = decode_channel(&d, &ch, 0, k, x, total, zeros, h, w); break;
        case 1: rc = decode_channel(&d, &ch, 1, k, x, total, zeros, h, w); break;
        case 2: rc = decode_channel(&d, &ch, 2, k, x, total, zeros, h, w); break;
        default: rc = decode_channel(&d, &ch, 3, k, x, total, zeros, h, w); break;
        }
        if (rc) return rc;
    }
    if (d.bad) return E_WORDS;
    if (d.ptr != d.end) return E_LEFT;
    if (d.cur != RANS_L || d.oth != RANS_L) return E_STATE;
    return OK;
}

static const char *message(int code) {
    switch (code) {
    case E_WORDS: return "payload ends before the declared latents are decoded";
    case E_RANGE: return "latents decode out of range";
    case E_LEFT: return "payload has undecoded words left";
    case E_STATE: return "coder state does not match";
    case E_MEMORY: return "out of memory";
    default: return "corrupt payload";
    }
}

static int get_tables(PyObject *capsule, Tables **t) {
    *t = (Tables *)PyCapsule_GetPointer(capsule, "walloc_io.rans.Tables");
    return *t != NULL;
}

/* decode_many(tables, payloads: sequence of buffers, h, w, out: writable i32[B, C, h*w])
 * -> list of error codes (0 = ok), one per stream. */
static PyObject *decode_many(PyObject *self, PyObject *args) {
    PyObject *capsule, *seq;
    int h, w;
    Py_buffer out;
    Tables *t;
    if (!PyArg_ParseTuple(args, "OOiiw*", &capsule, &seq, &h, &w, &out)) return NULL;
    PyObject *fast = NULL, *codes = NULL;
    Py_buffer *bufs = NULL;
    int *rc = NULL;
    Py_ssize_t nb = 0, got = 0;
    if (!get_tables(capsule, &t)) goto done;
    if (h < 1 || w < 1 || (t->ndim == 1 && h != 1)) {
        PyErr_SetString(PyExc_ValueError, "bad latent shape"); goto done;
    }
    fast = PySequence_Fast(seq, "payloads must be a sequence");
    if (!fast) goto done;
    nb = PySequence_Fast_GET_SIZE(fast);
    size_t n = (size_t)h * w, per = n * t->channels;
    if ((size_t)out.len != (size_t)nb * per * 4) {
        PyErr_SetString(PyExc_ValueError, "output buffer has the wrong size"); goto done;
    }
    bufs = calloc(nb ? nb : 1, sizeof(Py_buffer));
    rc = calloc(nb ? nb : 1, sizeof(int));
    if (!bufs || !rc) { PyErr_NoMemory(); goto done; }
    for (; got < nb; got++)
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(fast, got), &bufs[got], PyBUF_SIMPLE) < 0)
            goto done;
    int32_t *total = scratch(S_TOTAL, 4 * n);
    int32_t *colsum = scratch(S_COLSUM, 4 * ((size_t)w + 2));
    int32_t *zeros = scratch(S_ZEROS, 4 * ((size_t)w + 1));
    uint8_t *k = scratch(S_K, n);
    int32_t *en = t->nbw ? scratch(S_ENERGY, 4 * n) : NULL;
    int32_t *mag = t->nbw ? scratch(S_MAG, 4 * n) : NULL;
    if (!total || !colsum || !k || !zeros || (t->nbw && (!en || !mag))) {
        PyErr_NoMemory(); goto done;
    }
    memset(zeros, 0, 4 * ((size_t)w + 1));
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; b < nb; b++) {
        const uint8_t *src = bufs[b].buf;
        size_t len = (size_t)bufs[b].len;
        if ((uintptr_t)src & 1) { /* words are read as uint16: align odd buffers */
            uint8_t *aligned = scratch(S_ALIGN, len + 2);
            if (!aligned) { rc[b] = E_MEMORY; continue; }
            memcpy(aligned, src, len);
            src = aligned;
        }
        rc[b] = decode_stream(t, src, len, h, w, (int32_t *)out.buf + b * per, total, k, colsum,
                              zeros, en, mag);
    }
    scratch_done();
    Py_END_ALLOW_THREADS
    codes = PyList_New(nb);
    if (!codes) goto done;
    for (Py_ssize_t b = 0; b < nb; b++) PyList_SET_ITEM(codes, b, PyLong_FromLong(rc[b]));
done:
    for (Py_ssize_t b = 0; b < got; b++) PyBuffer_Release(&bufs[b]);
    free(bufs); free(rc);
    Py_XDECREF(fast);
    PyBuffer_Release(&out);
    return codes;
}

/* ---------------------------------------------------------------- encoder */

typedef const EncSym *Op;

ALWAYS_INLINE uint32_t enc_put(uint32_t x, Op o, uint16_t **ptr) {
    const uint32_t freq = (uint32_t)o->freq_m1 + 1;
    if ((uint64_t)x >= ((uint64_t)freq << 16)) {
        *--*ptr = (uint16_t)(x & 0xffff);
        x >>= 16;
    }
    uint32_t q = (uint32_t)(((unsigned __int128)x * o->rcp) >> o->shift);
    return x + q * (TOTAL - freq) + o->start;
}

/* Bits of channel x under each of the M modes (fixed point), in one pass. */
static void mode_costs(const Tables *t, int c, const int32_t *x, const uint8_t *k,
                       const int32_t *zeros, int h, int w, int64_t *bits) {
    const int M = t->modes, K = t->contexts, F = t->full_stride, mid = F / 2;
    const int32_t *cost[MAX_MODES];
    for (int m = 0; m < M; m++) cost[m] = t->full_cost + ((size_t)c * M + m) * K * F + mid;
    int64_t b0 = 0, b1 = 0, b2 = 0, b3 = 0;
    for (int i = 0; i < h; i++) {
        const int32_t *up = i ? x + (size_t)(i - 1) * w : zeros, *xi = x + (size_t)i * w;
        const uint8_t *ki = k + (size_t)i * w;
        int32_t left = 0, ul = 0;
        if (M == 4) { /* 2D predictive: unrolled */
            for (int j = 0; j < w; j++) {
                const int32_t v = xi[j], u = up[j];
                const size_t row = (size_t)ki[j] * F;
                b0 += cost[0][row + v];
                b1 += cost[1][row + v - left];
                b2 += cost[2][row + v - u];
                b3 += cost[3][row + v - left - u + ul];
                ul = u;
                left = v;
            }
        } else {
            for (int j = 0; j < w; j++) {
                const int32_t v = xi[j];
                const size_t row = (size_t)ki[j] * F;
                b0 += cost[0][row + v];
                if (M > 1) b1 += cost[1][row + v - left];
                left = v;
            }
        }
    }
    bits[0] = b0; bits[1] = b1; bits[2] = b2; bits[3] = b3;
}

/* The contextual model's bits of channel x under mode m: its residuals, their contexts
 * (box energy + nbw * causal same-channel neighbours, into k) and their cost. */
static int64_t ctx_mode_cost(const Tables *t, int c, int m, const int32_t *x, const int32_t *en,
                             const int32_t *zeros, int h, int w, int32_t *mag, uint8_t *k) {
    const int M = t->modes, K = t->contexts, F = t->full_stride, mid = F / 2;
    const int32_t *cost = t->full_cost + ((size_t)c * M + m) * K * F + mid;
    const uint8_t *lut = t->lut + (size_t)c * t->lut_stride;
    const int32_t top = t->lut_len[c] - 1, nbw = t->nbw;
    int64_t bits = 0;
    for (int i = 0; i < h; i++) {
        const int32_t *up = i ? x + (size_t)(i - 1) * w : zeros, *xi = x + (size_t)i * w;
        const int32_t *mup = i ? mag + (size_t)(i - 1) * w : zeros, *ei = en + (size_t)i * w;
        int32_t *mi = mag + (size_t)i * w;
        uint8_t *ki = k + (size_t)i * w;
        int32_t left = 0, ul = 0, ml = 0, win = 0;
        for (int j = 0; j < w; j++) {
            const int32_t u = up[j], v = xi[j] - predicted(m, left, u, ul);
            const int32_t energy = ei[j] + nbw * neighbours(t->ndim, mup, ml, win, j, w);
            const int kk = lut[energy < top ? energy : top];
            ki[j] = (uint8_t)kk;
            bits += cost[(size_t)kk * F + v];
            const int32_t a = v < 0 ? -v : v;
            mi[j] = a;
            if (t->ndim == 1) {
                win += a;
                if (j >= TAPS_1D) win -= mi[j - TAPS_1D];
            }
            ml = a;
            ul = u;
            left = xi[j];
        }
    }
    return bits;
}

ALWAYS_INLINE Op *emit_channel(const Tables *t, const int mode, const EncSym *cum,
                               const EncSym *tcum, const int32_t *x, const uint8_t *k,
                               int32_t *total, const int32_t *zeros, int h, int w, Op *ops) {
    const int S = t->core_stride, e = t->esc[mode], r = t->radius[mode];
    for (int i = 0; i < h; i++) {
        const int32_t *up = i ? x + (size_t)(i - 1) * w : zeros, *xi = x + (size_t)i * w;
        const uint8_t *ki = k + (size_t)i * w;
        int32_t *ti = total + (size_t)i * w;
        int32_t left = 0, ul = 0;
        for (int j = 0; j < w; j++) {
            const int32_t u = up[j], v = xi[j] - predicted(mode, left, u, ul);
            const EncSym *row = cum + (size_t)ki[j] * S;
            int32_t sym, tail = -1;
            if (e == r) sym = v + r;
            else if (v > e) { sym = 2 * e + 2; tail = v - e - 1; }
            else if (v < -e) { sym = 0; tail = -v - e - 1; }
            else sym = v + e + 1;
            *ops++ = row + sym;
            if (tail >= 0) *ops++ = tcum + tail;
            ti[j] += v < 0 ? -v : v;
            ul = u;
            left = xi[j];
        }
    }
    return ops;
}

static int encode_stream(const Tables *t, const int32_t *latents, int h, int w, uint16_t **words,
                         size_t *nwords) {
    const int C = t->channels, M = t->modes, K = t->contexts, S = t->core_stride, T = t->tail_stride;
    const size_t n = (size_t)h * w;
    const size_t cap = 2 * n * C + C + 8;
    Op *ops = scratch(S_OPS, cap * sizeof(Op));
    int32_t *total = scratch(S_TOTAL, 4 * n);
    int32_t *colsum = scratch(S_COLSUM, 4 * ((size_t)w + 2));
    int32_t *zeros = scratch(S_ZEROS, 4 * ((size_t)w + 1));
    uint8_t *k = scratch(S_K, n);
    uint16_t *buf = scratch(S_WORDS, 2 * (cap + 8));
    int32_t *en = t->nbw ? scratch(S_ENERGY, 4 * n) : NULL;
    int32_t *mag = t->nbw ? scratch(S_MAG, 4 * n) : NULL;
    uint8_t *k2 = t->nbw ? scratch(S_K2, n) : NULL;
    int status = OK;
    if (!ops || !total || !colsum || !zeros || !k || !buf || (t->nbw && (!en || !mag || !k2))) {
        status = E_MEMORY; goto done;
    }
    memset(total, 0, 4 * n);
    memset(zeros, 0, 4 * ((size_t)w + 1));
    for (size_t p = 0; p < n * C; p++)
        if (latents[p] > t->max_symbol || latents[p] < -t->max_symbol) { status = E_RANGE; goto done; }
    Op *op = ops + (M > 1 ? C : 0); /* the mode symbols come first, filled in per channel */
    EncSym uniform[MAX_MODES];
    for (int m = 0; m < M; m++) uniform[m] = make_sym((TOTAL / M) * m, TOTAL / M);
    for (int ci = 0; ci < C; ci++) {
        const int c = t->order[ci];
        const int32_t *x = latents + (size_t)c * n;
        int m = 0;
        if (t->nbw) { /* per mode: its own contexts; the best mode's stay in k */
            contexts(t, c, total, h, w, NULL, en, colsum);
            int64_t best = ctx_mode_cost(t, c, 0, x, en, zeros, h, w, mag, k);
            for (int mm = 1; mm < M; mm++) {
                int64_t bits = ctx_mode_cost(t, c, mm, x, en, zeros, h, w, mag, k2);
                if (bits < best) { /* ties: the lower mode */
                    uint8_t *swap = k; k = k2; k2 = swap;
                    best = bits; m = mm;
                }
            }
            if (M > 1) ops[ci] = uniform + m;
        } else {
            contexts(t, c, total, h, w, k, NULL, colsum);
        }
        if (M > 1 && !t->nbw) {
            int64_t bits[MAX_MODES];
            mode_costs(t, c, x, k, zeros, h, w, bits);
            for (int mm = 1; mm < M; mm++)
                if (bits[mm] < bits[m]) m = mm; /* ties: the lower mode */
            ops[ci] = uniform + m;
        }
        const EncSym *cum = t->enc + ((size_t)c * M + m) * K * S;
        const EncSym *tcum = t->tail_enc + ((size_t)c * M + m) * T;
        switch (m) {
        case 0: op = emit_channel(t, 0, cum, tcum, x, k, total, zeros, h, w, op); break;
        case 1: op = emit_channel(t, 1, cum, tcum, x, k, total, zeros, h, w, op); break;
        case 2: op = emit_channel(t, 2, cum, tcum, x, k, total, zeros, h, w, op); break;
        default: op = emit_channel(t, 3, cum, tcum, x, k, total, zeros, h, w, op); break;
        }
    }
    const size_t nops = (size_t)(op - ops);
    /* rANS: push in reverse, words written from the end of buf backwards. */
    uint32_t x[2] = {RANS_L, RANS_L};
    uint16_t *ptr = buf + cap + 8;
    size_t i = nops;
    if (i & 1) { i--; x[0] = enc_put(x[0], ops[i], &ptr); } /* op i uses state i & 1 */
    uint32_t x0 = x[0], x1 = x[1];
    while (i) {
        x1 = enc_put(x1, ops[i - 1], &ptr);
        x0 = enc_put(x0, ops[i - 2], &ptr);
        i -= 2;
    }
    x[0] = x0; x[1] = x1;
    for (int s = 1; s >= 0; s--) {
        *--ptr = (uint16_t)(x[s] >> 16);
        *--ptr = (uint16_t)(x[s] & 0xffff);
    }
    *nwords = (size_t)(buf + cap + 8 - ptr);
    *words = ptr; /* inside the thread's scratch: copy before the next call */
done:
    return status;
}

/* encode(tables, latents: i32[C, h*w] buffer, h, w) -> bytes */
static PyObject *encode(PyObject *self, PyObject *args) {
    PyObject *capsule;
    Py_buffer lat;
    int h, w;
    Tables *t;
    if (!PyArg_ParseTuple(args, "Oy*ii", &capsule, &lat, &h, &w)) return NULL;
    PyObject *result = NULL;
    if (!get_tables(capsule, &t)) goto done;
    if (h < 1 || w < 1 || (t->ndim == 1 && h != 1)
        || (size_t)lat.len != (size_t)h * w * t->channels * 4) {
        PyErr_SetString(PyExc_ValueError, "latents do not match the tables' shape"); goto done;
    }
    uint16_t *words = NULL;
    size_t nwords = 0;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = encode_stream(t, lat.buf, h, w, &words, &nwords);
    Py_END_ALLOW_THREADS
    if (status == E_MEMORY) PyErr_NoMemory();
    else if (status) PyErr_SetString(PyExc_ValueError, "latents out of the tables' range");
    else result = PyBytes_FromStringAndSize((const char *)words, 2 * (Py_ssize_t)nwords);
    scratch_done();
done:
    PyBuffer_Release(&lat);
    return result;
}

/* error_message(code) -> str */
static PyObject *error_message(PyObject *self, PyObject *args) {
    int code;
    if (!PyArg_ParseTuple(args, "i", &code)) return NULL;
    return PyUnicode_FromString(message(code));
}

static PyMethodDef methods[] = {
    {"make_tables", make_tables, METH_VARARGS, "Freeze integer tables for the native coder."},
    {"encode", encode, METH_VARARGS, "Latents of one stream -> payload words (bytes)."},
    {"decode_many", decode_many, METH_VARARGS, "Payloads -> latents (into a buffer), codes."},
    {"error_message", error_message, METH_VARARGS, "Text of a decode_many error code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rans", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rans(void) { return PyModule_Create(&module); }
