// One decode step of every layer of a decoder (Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3 shapes: see arch.py) for
// B sequences at once, each at its own position in its own cache slot: the arithmetic of forward.py's decode step
// in one call. Through ATen the small ops between the matmuls (norms, rope, the cache write, attention, the
// activation, residuals) cost more than the matmuls themselves at batch 1 (dispatch and a thread hand-off each).
//
//   x [B, D] fp32 (scaled embeddings); positions, slots int64 [B];
//   k_cache, v_cache [layers, slots, kv, capacity, hd], fp32 or fp16 (written at each row's position);
//   rope: per rope table (cos, sin with its first half negated) fp32 [capacity, rotary_dim];
//   norms per layer: attn_in, [attn_out], mlp_in, [mlp_out] (sandwich), [q_norm, k_norm] (qk_norm) — weights as
//   multiplied (Gemma's 1 + w already added);
//   weights/kinds: per layer the segments of qkv, o, gate_up, down (seg_counts: 4 per layer), see ops.h;
//   biases: 4 per layer (an empty tensor for none); layer_rope / layer_window: per layer (window 0 = global);
//   int8_mask: bit j set when group j (qkv, o, gate_up, down) rounds its input to int8 (int4-a8 / int8-a8).
// Returns x after the last layer (the final norm and the head stay in Python).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"
#include "ops.h"

namespace {

void rms_norm_into(const float* x, const float* w, float* out, int64_t n, double eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * r * w[i];
}

void rope_in_place(float* v, const float* cos, const float* sin_signed, int64_t rot) {
  const int64_t half = rot / 2;
  for (int64_t j = 0; j < half; ++j) {
    const float a = v[j], b = v[j + half];
    v[j] = a * cos[j] + b * sin_signed[j];
    v[j + half] = b * cos[j + half] + a * sin_signed[j + half];
  }
}

struct Layer {
  std::vector<pg::QSeg> lin[4];  // qkv, o, gate_up, down
  const float* bias[4];
  const float* norm_attn_in;
  const float* norm_attn_out;
  const float* norm_mlp_in;
  const float* norm_mlp_out;
  const float* q_norm;
  const float* k_norm;
  int64_t rope, window;
};

void add_bias(float* out, const float* bias, int64_t B, int64_t n) {
  if (!bias) return;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < n; ++i) out[b * n + i] += bias[i];
}

at::Tensor decoder_step(const at::Tensor& x_in, const at::Tensor& positions, const at::Tensor& slots,
                        const at::Tensor& k_cache, const at::Tensor& v_cache, at::TensorList rope,
                        at::TensorList norms, at::TensorList weights, at::IntArrayRef kinds,
                        at::IntArrayRef seg_counts, at::TensorList biases, at::IntArrayRef layer_rope,
                        at::IntArrayRef layer_window, int64_t n_heads, int64_t n_kv, int64_t rotary_dim, double eps,
                        double attn_scale, double attn_softcap, int64_t act, bool sandwich, bool qk_norm,
                        int64_t int8_mask) {
  TORCH_CHECK(x_in.dim() == 2 && x_in.scalar_type() == at::kFloat, "decoder_step: x must be float32 [B, D]");
  const int64_t B = x_in.size(0), D = x_in.size(1), L = k_cache.size(0), S = k_cache.size(1);
  const int64_t cap = k_cache.size(3), hd = k_cache.size(4);
  const bool half = k_cache.scalar_type() == at::kHalf;
  TORCH_CHECK(k_cache.is_contiguous() && v_cache.is_contiguous() && k_cache.sizes() == v_cache.sizes() &&
                  k_cache.scalar_type() == v_cache.scalar_type() && (half || k_cache.scalar_type() == at::kFloat) &&
                  k_cache.size(2) == n_kv,
              "decoder_step: caches must be contiguous float32/float16 [layers, slots, kv, capacity, hd]");
  TORCH_CHECK(positions.scalar_type() == at::kLong && slots.scalar_type() == at::kLong && positions.numel() == B &&
                  slots.numel() == B && positions.is_contiguous() && slots.is_contiguous(),
              "decoder_step: positions and slots must be int64 [B]");
  TORCH_CHECK(n_kv > 0 && n_heads % n_kv == 0 && rotary_dim % 2 == 0 && rotary_dim <= hd && hd <= 512,
              "decoder_step: bad head shape");
  TORCH_CHECK(static_cast<int64_t>(seg_counts.size()) == 4 * L && static_cast<int64_t>(biases.size()) == 4 * L &&
                  static_cast<int64_t>(layer_rope.size()) == L && static_cast<int64_t>(layer_window.size()) == L,
              "decoder_step: per-layer lists of the wrong length");
  const int64_t norms_per_layer = 2 + (sandwich ? 2 : 0) + (qk_norm ? 2 : 0);
  TORCH_CHECK(static_cast<int64_t>(norms.size()) == norms_per_layer * L, "decoder_step: wrong number of norms");
  const int64_t* pos = positions.data_ptr<int64_t>();
  const int64_t* slot = slots.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(pos[b] >= 0 && pos[b] < cap && slot[b] >= 0 && slot[b] < S, "decoder_step: position or slot outside the cache");
  }
  for (const at::Tensor& r : rope) {
    TORCH_CHECK(r.scalar_type() == at::kFloat && r.is_contiguous() && r.dim() == 2 && r.size(0) >= cap &&
                    r.size(1) == rotary_dim,
                "decoder_step: rope tables must be float32 [capacity, rotary_dim]");
  }

  // Parse the per-layer plan (microseconds: pointers only).
  const int64_t q_width = n_heads * hd, kv_width = n_kv * hd;
  std::vector<Layer> layers(static_cast<size_t>(L));
  size_t wi = 0, ki = 0;
  for (int64_t l = 0; l < L; ++l) {
    Layer& ly = layers[l];
    const at::Tensor* nm = &norms[l * norms_per_layer];
    int64_t ni = 0;
    ly.norm_attn_in = nm[ni++].data_ptr<float>();
    ly.norm_attn_out = sandwich ? nm[ni++].data_ptr<float>() : nullptr;
    ly.norm_mlp_in = nm[ni++].data_ptr<float>();
    ly.norm_mlp_out = sandwich ? nm[ni++].data_ptr<float>() : nullptr;
    ly.q_norm = qk_norm ? nm[ni++].data_ptr<float>() : nullptr;
    ly.k_norm = qk_norm ? nm[ni++].data_ptr<float>() : nullptr;
    ly.rope = layer_rope[l];
    ly.window = layer_window[l];
    TORCH_CHECK(ly.rope >= 0 && ly.rope < static_cast<int64_t>(rope.size()) / 2, "decoder_step: bad rope index");
    for (int j = 0; j < 4; ++j) {
      const int64_t count = seg_counts[4 * l + j];
      const int64_t K = j == 0 || j == 2 ? D : j == 1 ? q_width : -1;
      size_t used = 0;
      int64_t n_total = 0;
      // down's K is the MLP width: half of gate_up's rows.
      const int64_t k_here = K > 0 ? K : [&] {
        int64_t n = 0;
        for (const auto& s : ly.lin[2]) n += s.N;
        return n / 2;
      }();
      ly.lin[j] = pg::parse_segs(weights.slice(wi), kinds.slice(ki, count), k_here, &n_total, &used);
      wi += used;
      ki += count;
      const at::Tensor& bias = biases[4 * l + j];
      ly.bias[j] = bias.numel() ? bias.data_ptr<float>() : nullptr;
      TORCH_CHECK(!bias.numel() || (bias.scalar_type() == at::kFloat && bias.numel() == n_total),
                  "decoder_step: a bias of the wrong size");
      if (j == 0) TORCH_CHECK(n_total == q_width + 2 * kv_width, "decoder_step: qkv rows do not match the heads");
      if (j == 1 || j == 3) TORCH_CHECK(n_total == D, "decoder_step: o/down must have D rows");
    }
  }

  const int isa = pg::active_isa();
  at::Tensor x = x_in.contiguous().clone();
  float* xp = x.data_ptr<float>();
  const int64_t inter = [&] {
    int64_t n = 0;
    for (const auto& s : layers[0].lin[2]) n += s.N;
    return n / 2;
  }();
  std::vector<float> h(B * D), qkv(B * (q_width + 2 * kv_width)), attn(B * q_width), o(B * D);
  std::vector<float> gu(B * 2 * inter), mid(B * inter);
  std::vector<int64_t> lo(B);
  const int64_t group = n_heads / n_kv;
  const size_t elem = half ? 2 : 4;
  char* kbase = static_cast<char*>(k_cache.data_ptr());
  char* vbase = static_cast<char*>(v_cache.data_ptr());

  for (int64_t l = 0; l < L; ++l) {
    const Layer& ly = layers[l];
    for (int64_t b = 0; b < B; ++b) rms_norm_into(xp + b * D, ly.norm_attn_in, h.data() + b * D, D, eps);
    const int64_t qkv_w = q_width + 2 * kv_width;
    pg::linear_gemv(isa, h.data(), B, D, ly.lin[0], (int8_mask >> 0) & 1, qkv.data(), qkv_w);
    add_bias(qkv.data(), ly.bias[0], B, qkv_w);
    const float* cos_t = rope[2 * ly.rope].data_ptr<float>();
    const float* sin_t = rope[2 * ly.rope + 1].data_ptr<float>();
    char* kl = kbase + static_cast<size_t>(l) * S * n_kv * cap * hd * elem;
    char* vl = vbase + static_cast<size_t>(l) * S * n_kv * cap * hd * elem;
    for (int64_t b = 0; b < B; ++b) {
      float* row = qkv.data() + b * qkv_w;
      for (int64_t head = 0; head < n_heads + n_kv; ++head) {
        float* v = row + head * hd;
        if (qk_norm) rms_norm_into(v, head < n_heads ? ly.q_norm : ly.k_norm, v, hd, eps);
        rope_in_place(v, cos_t + pos[b] * rotary_dim, sin_t + pos[b] * rotary_dim, rotary_dim);
      }
      for (int64_t g = 0; g < n_kv; ++g) {
        const size_t off = static_cast<size_t>(((slot[b] * n_kv + g) * cap + pos[b]) * hd);
        const float* kv_k = row + q_width + g * hd;
        const float* kv_v = row + q_width + kv_width + g * hd;
        if (half) {
          pg::floats_to_halves(isa, kv_k, reinterpret_cast<uint16_t*>(kl) + off, hd);
          pg::floats_to_halves(isa, kv_v, reinterpret_cast<uint16_t*>(vl) + off, hd);
        } else {
          std::copy_n(kv_k, hd, reinterpret_cast<float*>(kl) + off);
          std::copy_n(kv_v, hd, reinterpret_cast<float*>(vl) + off);
        }
      }
      lo[b] = ly.window > 0 ? std::max<int64_t>(0, pos[b] - ly.window + 1) : 0;
    }
    // Attention: queries are the first q_width values of each qkv row (copied out contiguous per row).
    std::vector<float> q(B * q_width);
    for (int64_t b = 0; b < B; ++b) std::copy_n(qkv.data() + b * qkv_w, q_width, q.data() + b * q_width);
    pg::AttnArgs aa{q.data(), kl, vl, half, cap, hd, n_heads, n_kv, slot, lo.data(), pos,
                    static_cast<float>(attn_scale), static_cast<float>(attn_softcap), attn.data()};
    // Tasks: (row, kv head, chunk of keys); each row's chunk count depends on its visible length.
    std::vector<int64_t> first(B + 1, 0);
    int64_t keys = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = pos[b] - lo[b] + 1;
      first[b + 1] = first[b] + (n + pg::kAttnChunk - 1) / pg::kAttnChunk;
      keys += n;
    }
    const int64_t chunks = first[B], tasks = chunks * n_kv, part = group * (hd + 2);
    std::vector<float> parts(tasks * part);
    const int64_t grain = keys * n_heads * hd > (1 << 15) ? 1 : tasks;
    at::parallel_for(0, tasks, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> scores(group * pg::kAttnChunk);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t c = task / n_kv, g = task % n_kv;
        const int64_t b = std::upper_bound(first.begin(), first.end(), c) - first.begin() - 1;
        const int64_t k0 = lo[b] + (c - first[b]) * pg::kAttnChunk;
        const int64_t k1 = std::min(pos[b] + 1, k0 + pg::kAttnChunk);
        pg::attn_chunk(isa, aa, b, g, k0, k1, parts.data() + task * part, scores.data());
      }
    });
    std::vector<float> row_parts;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n_chunks = first[b + 1] - first[b];
      for (int64_t g = 0; g < n_kv; ++g) {
        row_parts.resize(n_chunks * part);
        for (int64_t c = 0; c < n_chunks; ++c) {
          std::copy_n(parts.data() + ((first[b] + c) * n_kv + g) * part, part, row_parts.data() + c * part);
        }
        pg::attn_combine(aa, b, g, row_parts.data(), n_chunks);
      }
    }
    pg::linear_gemv(isa, attn.data(), B, q_width, ly.lin[1], (int8_mask >> 1) & 1, o.data(), D);
    add_bias(o.data(), ly.bias[1], B, D);
    for (int64_t b = 0; b < B; ++b) {
      float* ob = o.data() + b * D;
      if (sandwich) rms_norm_into(ob, ly.norm_attn_out, ob, D, eps);
      for (int64_t d = 0; d < D; ++d) xp[b * D + d] += ob[d];
      rms_norm_into(xp + b * D, ly.norm_mlp_in, h.data() + b * D, D, eps);
    }
    pg::linear_gemv(isa, h.data(), B, D, ly.lin[2], (int8_mask >> 2) & 1, gu.data(), 2 * inter);
    add_bias(gu.data(), ly.bias[2], B, 2 * inter);
    for (int64_t b = 0; b < B; ++b) pg::gated_activation(isa, static_cast<int>(act), gu.data() + b * 2 * inter, inter,
                                                         mid.data() + b * inter);
    pg::linear_gemv(isa, mid.data(), B, inter, ly.lin[3], (int8_mask >> 3) & 1, o.data(), D);
    add_bias(o.data(), ly.bias[3], B, D);
    for (int64_t b = 0; b < B; ++b) {
      float* ob = o.data() + b * D;
      if (sandwich) rms_norm_into(ob, ly.norm_mlp_out, ob, D, eps);
      for (int64_t d = 0; d < D; ++d) xp[b * D + d] += ob[d];
    }
  }
  return x;
}

// Prefill's rope, in place: x fp32 [T, H, hd] (the last dim contiguous: q or k, views of the qkv product), the first
// rot dims of each head rotated at positions[t] of the tables (cos, sin with its first half negated; fp32
// [capacity, rot]), as the decode step does. Through ATen it was four new [T, H, hd] tensors a call (two products,
// a roll, a sum) and two gathers of table rows: ~5% of a Gemma-3 prefill.
void rope_prefill(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& positions) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 3 && x.stride(2) == 1,
              "rope_: x must be float32 [T, heads, head_dim] with its last dim contiguous");
  TORCH_CHECK(cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat && cos.dim() == 2 &&
                  cos.is_contiguous() && sin.is_contiguous() && sin.sizes() == cos.sizes() &&
                  cos.size(1) % 2 == 0 && cos.size(1) <= x.size(2),
              "rope_: cos and sin must be contiguous float32 [capacity, rot], rot even and at most head_dim");
  TORCH_CHECK(positions.scalar_type() == at::kLong && positions.dim() == 1 && positions.is_contiguous() &&
                  positions.size(0) == x.size(0),
              "rope_: positions must be int64 [T]");
  const int64_t T = x.size(0), H = x.size(1), rot = cos.size(1), cap = cos.size(0);
  const int64_t* pos = positions.data_ptr<int64_t>();
  for (int64_t t = 0; t < T; ++t) TORCH_CHECK(pos[t] >= 0 && pos[t] < cap, "rope_: position ", pos[t], " outside the tables");
  float* xp = x.data_ptr<float>();
  const float* c = cos.data_ptr<float>();
  const float* s = sin.data_ptr<float>();
  const int64_t s0 = x.stride(0), s1 = x.stride(1);
  at::parallel_for(0, T * H, std::max<int64_t>(1, 4096 / rot), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t t = r / H;
      rope_in_place(xp + t * s0 + (r % H) * s1, c + pos[t] * rot, s + pos[t] * rot, rot);
    }
  });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(playground, m) {
  m.def("rope_(Tensor(a!) x, Tensor cos, Tensor sin, Tensor positions) -> ()");
  m.def("decoder_step(Tensor x, Tensor positions, Tensor slots, Tensor(a!) k_cache, Tensor(b!) v_cache, "
        "Tensor[] rope, Tensor[] norms, Tensor[] weights, int[] kinds, int[] seg_counts, Tensor[] biases, "
        "int[] layer_rope, int[] layer_window, int n_heads, int n_kv, int rotary_dim, float eps, float attn_scale, "
        "float attn_softcap, int act, bool sandwich, bool qk_norm, int int8_mask) -> Tensor");
}

TORCH_LIBRARY_IMPL(playground, CPU, m) {
  m.impl("decoder_step", &decoder_step);
  m.impl("rope_", &rope_prefill);
}
