// GGUF blocks whose values the int8 format holds per group of 32 (see gguf_repack.py for the layouts):
//   re-quantized: Q6_K (where the int6 kernel does not run), Q5_K, Q3_K and Q2_K: each group scaled by the largest
//        |value| its blocks' scales allow / 127 in fp16, rounded half to even;
//   IQ4_NL [rows, blocks, 18], IQ4_XS [.., 136]: their table values exactly, d (* sub-block scale) in fp16.
// An fp16 overflow of a scale shows as inf: gguf_repack.py checks.
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "gguf_blocks.h"
#include "kernels.h"

namespace {

using namespace pg::gguf;  // NOLINT: the repacks' helpers

// A K-quant block's 256 values q (weight order) with w = base[r] + q * step[r] for run r of 16 weights, as int8:
// each group of 32 (two runs) scaled by the largest |w| its runs allow (q in 0..qmax) / 127 in fp16, rounded half
// to even (gguf_repack.py's _requantize, to the same bits but for an occasional tie).
void requantize_block(const uint8_t* q, const float (&step)[16], const float (&base)[16], float qmax, int8_t* qp,
                      uint16_t* sp) {
  for (int g = 0; g < 8; ++g) {  // group g: weights 32g..32g+31, runs 2g and 2g + 1
    float bound = 0.f;
    for (int r = 2 * g; r < 2 * g + 2; ++r)
      bound = std::max(bound, std::max(std::fabs(base[r]), std::fabs(step[r] * qmax + base[r])));
    const uint16_t s16 = to_half(std::max(bound / 127.f, 0x1p-24f));
    const float inv = 1.f / pg::half_to_float(s16);
    sp[g] = s16;
    for (int r = 2 * g; r < 2 * g + 2; ++r) {  // a run at a time: one step, so the loop vectorises
      const float si = step[r] * inv, b = base[r] * inv;
      for (int j = 0; j < 16; ++j) {
        // + 1.5 * 2^23 - 1.5 * 2^23 rounds |x| < 2^22 to nearest even, like nearbyint (a libm call here: the
        // library is built without -march)
        float v = (b + static_cast<float>(q[16 * r + j]) * si + 12582912.f) - 12582912.f;
        v = v < -127.f ? -127.f : (v > 127.f ? 127.f : v);
        qp[16 * r + j] = static_cast<int8_t>(static_cast<int>(v));
      }
    }
  }
}

// A Q6_K block's 256 values (0..63, weight order) into q6; returns its d.
float q6_k_values(const uint8_t* blk, uint8_t* q6) {
  const uint8_t* ql = blk;
  const uint8_t* qh = blk + 128;
  for (int half = 0; half < 2; ++half) {  // weight 128 half + 32 quadrant + l (ggml's dequantize_row_q6_K)
    const uint8_t* l4 = ql + 64 * half;
    const uint8_t* h2 = qh + 32 * half;
    uint8_t* out = q6 + 128 * half;
    for (int l = 0; l < 32; ++l) {
      out[l] = static_cast<uint8_t>((l4[l] & 15) | ((h2[l] & 3) << 4));
      out[l + 32] = static_cast<uint8_t>((l4[l + 32] & 15) | (((h2[l] >> 2) & 3) << 4));
      out[l + 64] = static_cast<uint8_t>((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4));
      out[l + 96] = static_cast<uint8_t>((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4));
    }
  }
  return half_at(blk + 208);
}

std::tuple<at::Tensor, at::Tensor> repack_q6_k(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 8, out);
  for_blocks(blocks, 210, "repack_q6_k", 256, [&](int64_t i, const uint8_t* blk) {
    uint8_t q6[256];
    const int8_t* sub = reinterpret_cast<const int8_t*>(blk + 192);
    const float d = q6_k_values(blk, q6);
    float step[16], base[16];
    for (int r = 0; r < 16; ++r) {
      step[r] = d * static_cast<float>(sub[r]);
      base[r] = step[r] * -32.f;  // q - 32
    }
    requantize_block(q6, step, base, 63.f, o.qp + i * 256, o.sp + i * 8);
  });
  return o.result();
}

// The 2-bit values of Q2_K / Q3_K (64 bytes at qs): weight 128h + 32j + l in bits 2j..2j+1 of byte 32h + l.
void two_bit_values(const uint8_t* qs, uint8_t* q) {
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) q[128 * h + 32 * j + l] = (qs[32 * h + l] >> (2 * j)) & 3;
}

// Q2_K [rows, blocks, 84] -> int8: w = d * (sc & 15) * q - dmin * (sc >> 4) per run of 16, re-quantized.
std::tuple<at::Tensor, at::Tensor> repack_q2_k(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 8, out);
  for_blocks(blocks, 84, "repack_q2_k", 256, [&](int64_t i, const uint8_t* blk) {
    uint8_t q[256];
    two_bit_values(blk + 16, q);
    const float d = half_at(blk + 80), dmin = half_at(blk + 82);
    float step[16], base[16];
    for (int r = 0; r < 16; ++r) {
      step[r] = d * static_cast<float>(blk[r] & 15);
      base[r] = -(dmin * static_cast<float>(blk[r] >> 4));
    }
    requantize_block(q, step, base, 3.f, o.qp + i * 256, o.sp + i * 8);
  });
  return o.result();
}

// Q3_K [rows, blocks, 110] -> int8: w = d * (scale - 32) * (q - 4), q = the 2-bit value + 4 * its high bit (bit
// 4h + j of byte l of the first 32 for weight 128h + 32j + l); 16 6-bit scales, re-quantized.
std::tuple<at::Tensor, at::Tensor> repack_q3_k(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 8, out);
  for_blocks(blocks, 110, "repack_q3_k", 256, [&](int64_t i, const uint8_t* blk) {
    uint8_t q[256];
    two_bit_values(blk + 32, q);
    for (int w = 0; w < 256; ++w) q[w] |= ((blk[w & 31] >> (w >> 5)) & 1) << 2;
    const float d = half_at(blk + 108);
    const uint8_t* sc = blk + 96;
    float step[16], base[16];
    for (int r = 0; r < 16; ++r) {
      const int low = r < 8 ? sc[r] & 15 : sc[r - 8] >> 4, top = (sc[8 + r % 4] >> (2 * (r / 4))) & 3;
      step[r] = d * static_cast<float>((low | top << 4) - 32);
      base[r] = step[r] * -4.f;
    }
    requantize_block(q, step, base, 7.f, o.qp + i * 256, o.sp + i * 8);
  });
  return o.result();
}

// IQ4_NL / IQ4_XS -> int8: each 4-bit index's table value (ggml's kvalues_iq4nl) exactly; IQ4_NL's scale d, IQ4_XS's
// d * (6-bit sub-block scale - 32) per 32 weights in fp16 (an overflow shows as inf: the caller checks).
constexpr int8_t kIq4Values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

void iq4_run(const uint8_t* nibbles, int8_t* q) {  // 16 bytes: weight j in the low nibble of byte j, j + 16 high
  for (int j = 0; j < 16; ++j) {
    q[j] = kIq4Values[nibbles[j] & 15];
    q[j + 16] = kIq4Values[nibbles[j] >> 4];
  }
}

std::tuple<at::Tensor, at::Tensor> repack_iq4_nl(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 1, out);
  for_blocks(blocks, 18, "repack_iq4_nl", 4096, [&](int64_t i, const uint8_t* blk) {
    std::memcpy(o.sp + i, blk, 2);
    iq4_run(blk + 2, o.qp + i * 32);
  });
  return o.result();
}

std::tuple<at::Tensor, at::Tensor> repack_iq4_xs(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 8, out);
  for_blocks(blocks, 136, "repack_iq4_xs", 256, [&](int64_t i, const uint8_t* blk) {
    const float d = half_at(blk);
    const int high = blk[2] | blk[3] << 8;
    for (int s = 0; s < 8; ++s) {
      const int low = (blk[4 + s / 2] >> (4 * (s % 2))) & 15, top = (high >> (2 * s)) & 3;
      o.sp[i * 8 + s] = to_half(d * static_cast<float>((low | top << 4) - 32));
      iq4_run(blk + 8 + 16 * s, o.qp + i * 256 + 32 * s);
    }
  });
  return o.result();
}

// Q5_K [rows, blocks, 176] -> int8: w = d * scale * q - dmin * min per 32-weight sub-block (Q4_K's 6-bit pairs),
// q = its nibble (Q4_K's chunks) + 16 * its high bit (bit s of byte l for weight l of sub-block s), re-quantized.
std::tuple<at::Tensor, at::Tensor> repack_q5_k(const at::Tensor& blocks, at::TensorList out) {
  Int8Out o(blocks, 8, out);
  for_blocks(blocks, 176, "repack_q5_k", 256, [&](int64_t i, const uint8_t* blk) {
    const float d = half_at(blk), dmin = half_at(blk + 2);
    float step[16], base[16];
    for (int j = 0; j < 8; ++j) {  // sub-block j is runs 2j and 2j + 1
      const K4Scale k = k4_scale(blk + 4, j);
      step[2 * j] = step[2 * j + 1] = d * static_cast<float>(k.scale);
      base[2 * j] = base[2 * j + 1] = -(dmin * static_cast<float>(k.min));
    }
    uint8_t q[256];
    const uint8_t *qh = blk + 16, *qs = blk + 48;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        q[64 * c + l] = static_cast<uint8_t>((qs[32 * c + l] & 15) | ((qh[l] >> (2 * c)) & 1) << 4);
        q[64 * c + 32 + l] = static_cast<uint8_t>((qs[32 * c + l] >> 4) | ((qh[l] >> (2 * c + 1)) & 1) << 4);
      }
    }
    requantize_block(q, step, base, 31.f, o.qp + i * 256, o.sp + i * 8);
  });
  return o.result();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(playground, m) {
  m.def("repack_q6_k(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_q5_k(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_q2_k(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_q3_k(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_iq4_nl(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
  m.def("repack_iq4_xs(Tensor blocks, Tensor[] out) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(playground, CPU, m) {
  m.impl("repack_q6_k", &repack_q6_k);
  m.impl("repack_q5_k", &repack_q5_k);
  m.impl("repack_q2_k", &repack_q2_k);
  m.impl("repack_q3_k", &repack_q3_k);
  m.impl("repack_iq4_nl", &repack_iq4_nl);
  m.impl("repack_iq4_xs", &repack_iq4_xs);
}
