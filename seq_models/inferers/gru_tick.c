/*
 * One streaming tick of a stacked GRU regressor (batch 1), for GRUStreamingInferer's native backend.
 *
 * Compiled on first use by seq_models/inferers/native.py (cc -O3 -march=native -shared) and called through
 * ctypes with pointers into tensors that Python preallocated once. No allocation, no framework calls.
 *
 * Layout (all float32, row-major, prepared by Python):
 *   wi_t[l]: [in_l, 3H]  transposed input weights of layer l, gate order r, z, n (layer 0 has the eval-mode batch
 *                        norm folded in: W_ih * scale and b_ih + W_ih @ shift)
 *   wh_t[l]: [H, 3H]     transposed hidden weights
 *   bi[l], bh[l]: [3H]   biases
 *   h: [L, H]            hidden state, updated in place
 *   lin_w: [H], lin_b: [1]
 *   scratch: [6H]        gi (3H) and gh (3H)
 * The GRU update is PyTorch's: r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
 * h' = (1 - z) * n + z * h.
 */
#include <math.h>

#define MAX_LAYERS 16

typedef float v8 __attribute__((vector_size(32), aligned(4)));

typedef struct {
    int num_layers;
    int hidden;
    int input;
    const float *wi_t[MAX_LAYERS];
    const float *wh_t[MAX_LAYERS];
    const float *bi[MAX_LAYERS];
    const float *bh[MAX_LAYERS];
    const float *lin_w;
    const float *lin_b;
    float *h;
    float *scratch;
} gru_ctx;

/* out[0:n] = bias + sum_k w_t[k, :] * x[k]   (w_t: [k_dim, n], row-major) */
static void matvec_t(float *out, const float *bias, const float *w_t, const float *x, int k_dim, int n) {
    int jb = 0;
    for (; jb + 64 <= n; jb += 64) {
        v8 a0 = *(const v8 *)(bias + jb), a1 = *(const v8 *)(bias + jb + 8);
        v8 a2 = *(const v8 *)(bias + jb + 16), a3 = *(const v8 *)(bias + jb + 24);
        v8 a4 = *(const v8 *)(bias + jb + 32), a5 = *(const v8 *)(bias + jb + 40);
        v8 a6 = *(const v8 *)(bias + jb + 48), a7 = *(const v8 *)(bias + jb + 56);
        const float *w = w_t + jb;
        for (int k = 0; k < k_dim; ++k, w += n) {
            const float xs = x[k];
            const v8 xk = {xs, xs, xs, xs, xs, xs, xs, xs};
            a0 += *(const v8 *)(w) * xk;
            a1 += *(const v8 *)(w + 8) * xk;
            a2 += *(const v8 *)(w + 16) * xk;
            a3 += *(const v8 *)(w + 24) * xk;
            a4 += *(const v8 *)(w + 32) * xk;
            a5 += *(const v8 *)(w + 40) * xk;
            a6 += *(const v8 *)(w + 48) * xk;
            a7 += *(const v8 *)(w + 56) * xk;
        }
        *(v8 *)(out + jb) = a0; *(v8 *)(out + jb + 8) = a1; *(v8 *)(out + jb + 16) = a2; *(v8 *)(out + jb + 24) = a3;
        *(v8 *)(out + jb + 32) = a4; *(v8 *)(out + jb + 40) = a5; *(v8 *)(out + jb + 48) = a6; *(v8 *)(out + jb + 56) = a7;
    }
    for (int j = jb; j < n; ++j) {
        float acc = bias[j];
        for (int k = 0; k < k_dim; ++k) acc += w_t[(long)k * n + j] * x[k];
        out[j] = acc;
    }
}

static inline float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

/* returns 0 on success, 1 for a bad context, 2 when x holds a NaN (state untouched) */
int gru_tick(const gru_ctx *c, const float *x, float *y) {
    const int H = c->hidden, G = 3 * c->hidden;
    float *gi = c->scratch, *gh = c->scratch + G;
    const float *inp = x;
    int in_dim = c->input;
    if (c->num_layers < 1 || c->num_layers > MAX_LAYERS) return 1;
    for (int k = 0; k < c->input; ++k)
        if (x[k] != x[k]) return 2; /* NaN: refuse the tick before touching the state */
    for (int l = 0; l < c->num_layers; ++l) {
        float *h = c->h + (long)l * H;
        matvec_t(gh, c->bh[l], c->wh_t[l], h, H, G);
        matvec_t(gi, c->bi[l], c->wi_t[l], inp, in_dim, G);
        for (int j = 0; j < H; ++j) {
            const float r = sigmoidf(gi[j] + gh[j]);
            const float z = sigmoidf(gi[H + j] + gh[H + j]);
            const float n = tanhf(gi[2 * H + j] + r * gh[2 * H + j]);
            h[j] = n + z * (h[j] - n);
        }
        inp = h;
        in_dim = H;
    }
    float acc = c->lin_b[0];
    for (int j = 0; j < H; ++j) acc += c->lin_w[j] * inp[j];
    y[0] = acc;
    return 0;
}
