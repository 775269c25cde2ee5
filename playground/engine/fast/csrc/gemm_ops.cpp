// Prefill's GEMM for the qlinear op (linear_gemm): integer panels on the AVX2 path (gemm_avx2.cpp) and for int4 /
// int5 / int6 weights on AVX512-VNNI (gemm_avx512.cpp), else tiles of dequantized rows through BLAS (bf16 through
// oneDNN where the CPU has AVX512-BF16, else MKL's fp32 sgemm). A few rows of x (VNNI: under 16, AVX2: under 8) times
// int4 / int5 weights (VNNI: int6 too) take the panels' numbers without the panels (gemm_small.cpp,
// gemm_small_avx2.cpp).
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/copy.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "kernels.h"
#include "ops.h"

// sgemm from the MKL inside torch's CPU library (x86 Linux wheels export it); weak, so a torch without it still
// loads this library and takes at::mm instead.
extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
}

namespace pg {

// f(begin, end) over [0, total) in chunks of `chunk` handed to torch's threads one at a time (an atomic counter):
// for prefill's GEMM a static split into one range per thread left the first to finish spinning in libgomp while
// the other, its core shared with another process or just slower, ran on (~9% of a prefill). (Decode keeps the
// static split: chunks of its rows measured no faster.)
template <class F>
static void dynamic_for(int64_t total, int64_t chunk, const F& f) {
  const int64_t chunks = (total + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), chunks), 1, [&](int64_t, int64_t) {
    for (int64_t c = next++; c < chunks; c = next++) f(c * chunk, std::min(total, (c + 1) * chunk));
  });
}

// at::mm on bf16 is fast only through oneDNN: a torch built without it (or with it switched off) would take its
// plain loops, far slower than the fp32 GEMM.
bool bf16_gemm_available(int isa) {
  return cpu().bf16 && isa == kAvx512 && at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
}

bool gemm_in_bf16(int isa, bool bf16) { return bf16 && !exact_fp32() && bf16_gemm_available(isa); }

bool gemm_in_integers(int isa, bool reduced) {
  return reduced && !exact_fp32() && (isa == kAvx2 || quad_kernel(isa));
}

// Which segments the integer GEMMs multiply: int4, int5 and int6 ones (x rounded to int8 in either mode: as the int8
// mode's error, it costs no measured perplexity since the offsets meet x as rounded, and the int16 split took twice
// the multiplies); on the AVX2 path also int8 ones in the fp32 mode (x16 as is; AVX512-VNNI's int8 weights keep
// the bf16 tiles).
static bool takes_x8(const QSeg& s) { return nibble_kind(s.kind) || s.kind == kInt6; }
static bool integer_gemm(int isa, const QSeg& s, bool int8_x) {
  return takes_x8(s) || (isa == kAvx2 && !int8_x);
}

bool gemm_takes_integers(int isa, const std::vector<QSeg>& segs, bool int8_x, bool reduced) {
  return gemm_in_integers(isa, reduced) &&
         std::any_of(segs.begin(), segs.end(), [&](const QSeg& s) { return integer_gemm(isa, s, int8_x); });
}

// x rounded per group for gemm_rows (into arrays kept for the next call, each rounding its own), rows split over the
// threads: to int8 (int4 weights, either mode), or to int16 as is (int8 and int6 weights, the fp32 mode). A few rows
// on AVX512-VNNI also in the quad order (xq4) that gemm_small_vnni512 reads, as decode does.
static XPrep prepare_gemm(int isa, const at::Tensor& x, bool int8_x, bool half_sums = false) {
  const int64_t T = x.size(0), K = x.size(1), G = K / kGroup, Gp = (G + 7) / 8 * 8;
  thread_local std::vector<int8_t> xq, xq4;
  thread_local std::vector<int16_t> x16;
  thread_local std::vector<float> xs, xs16, sumx, sumq;
  thread_local std::vector<int32_t> qsum, qsum16;
  XPrep xp{x.data_ptr<float>(), T, K, G, Gp, int8_x};
  if (int8_x) {
    xp.sumx = reused(sumx, T * Gp);
    xp.sumq = reused(sumq, T * Gp);
    if (isa == kAvx512) xp.qsum = reused(qsum, T * Gp);
    if (half_sums) xp.qsum16 = reused(qsum16, T * K / 16);
    xp.xq = reused(xq, T * K);
    if (isa == kAvx512 && T < kGemmSmallT) xp.xq4 = reused(xq4, T * K);
    xp.xs = reused(xs, T * Gp);
  } else {
    xp.xs16 = reused(xs16, T * Gp);
    xp.x16 = reused(x16, T * K);
  }
  at::parallel_for(0, T, 8, [&](int64_t b, int64_t e) {
    XPrep rows = xp;
    rows.x += b * K;
    rows.T = e - b;
    if (int8_x) {
      rows.sumx += b * Gp;
      rows.sumq += b * Gp;
      if (rows.qsum) rows.qsum += b * Gp;
      rows.xq += b * K;
      if (rows.xq4) rows.xq4 += b * K;
      rows.xs += b * Gp;
      prepare_x(isa, rows);
      for (int64_t i = 0; rows.qsum16 && i < (e - b) * K / 16; ++i) {  // int6's half groups
        int32_t sum = 0;
        for (int j = 0; j < 16; ++j) sum += xp.xq[b * K + 16 * i + j];
        xp.qsum16[b * K / 16 + i] = sum;
      }
    } else {
      rows.xs16 += b * Gp;
      rows.x16 += b * K;
      prepare_gemm_x16(rows);
    }
  });
  return xp;
}

// One segment through the tiles of dequantized rows and a BLAS GEMM.
static void tile_gemm(int isa, const at::Tensor& x, const at::Tensor& xin, const QSeg& s, bool bf16, float* out,
                      int64_t ldo) {
  const int64_t T = x.size(0), K = x.size(1);
  // Tiles of ~4 MiB (bf16) / 8 MiB (fp32): large enough for the GEMM to run at speed (smaller ones measured slower).
  const int64_t rows = std::max<int64_t>(64, ((int64_t{1} << 21) / K) / 64 * 64);
  thread_local std::vector<uint16_t> tile16, y16;  // at most 4 MiB, T (a prefill chunk) x rows
  thread_local std::vector<float> tile32;
  const at::TensorOptions half = x.options().dtype(at::kBFloat16);
  float* const t32 = bf16 ? nullptr : reused(tile32, rows * K);
  uint16_t* const t16 = bf16 ? reused(tile16, rows * K) : nullptr;
  uint16_t* const y = bf16 ? reused(y16, T * rows) : nullptr;
  for (int64_t n0 = 0; n0 < s.N; n0 += rows) {
    const int64_t r = std::min(rows, s.N - n0);
    at::parallel_for(0, r, 16, [&](int64_t b, int64_t e) {
      dequant_rows(isa, s, n0 + b, n0 + e, bf16 ? nullptr : t32 + b * K, bf16 ? t16 + b * K : nullptr);
    });
    float* c = out + n0;
    const int m = static_cast<int>(T), n = static_cast<int>(r), k = static_cast<int>(K), ld = static_cast<int>(ldo);
    if (bf16) {  // out[T, r] (row stride ldo) = x[T, K] . tile[r, K]^T
      at::Tensor yt = at::from_blob(y, {T, r}, half);
      at::mm_out(yt, xin, at::from_blob(t16, {r, K}, half).t());
      at::from_blob(c, {T, r}, {ldo, 1}, x.options()).copy_(yt);
    } else if (sgemm_ != nullptr) {  // column-major: out^T [r, T] = tile^T' . x^T
      const float one = 1.f, zero = 0.f;
      sgemm_("T", "N", &n, &m, &k, &one, t32, &k, x.data_ptr<float>(), &k, &zero, c, &ld);
    } else {
      const at::Tensor w = at::from_blob(t32, {r, K}, x.options());
      at::from_blob(c, {T, r}, {ldo, 1}, x.options()).copy_(at::mm(x, w.t()));
    }
  }
}

void linear_gemm(int isa, const at::Tensor& x, const std::vector<QSeg>& segs, bool int8_x, bool reduced,
                 float* out, int64_t ldo) {
  const int64_t T = x.size(0), K = x.size(1);
  // bf16 goes through at::mm, i.e. oneDNN (AVX512-BF16 or AMX code): ~2.2x MKL's sgemm on a 2-core Zen 4, where
  // MKL's own bf16 GEMM runs no faster than its fp32 one. at::mm returns bf16 for bf16 inputs on the CPU (the
  // products are summed in fp32 and rounded once, 2^-9 relative: far below what 4-bit weights cost).
  const bool bf16 = gemm_in_bf16(isa, reduced);
  const bool ints = gemm_in_integers(isa, reduced);
  const auto in_ints = [&](const QSeg& s) { return ints && integer_gemm(isa, s, int8_x); };
  const auto taken = [&](bool x8) {  // int4, int5 and int6 weights meet x rounded to int8, int8 ones x16
    return std::any_of(segs.begin(), segs.end(), [&](const QSeg& s) { return in_ints(s) && takes_x8(s) == x8; });
  };
  const bool nibbles = taken(true), wide = taken(false);
  const bool halves = std::any_of(segs.begin(), segs.end(), [&](const QSeg& s) { return in_ints(s) && s.kind == kInt6; });
  const bool tiles = !std::all_of(segs.begin(), segs.end(), in_ints);
  thread_local std::vector<uint16_t> x16;  // T x K
  at::Tensor xin = x;
  if (bf16 && tiles) {  // x may have a row stride (a view of a wider tensor): read it as is
    xin = at::from_blob(reused(x16, T * K), {T, K}, x.options().dtype(at::kBFloat16));
    const float* src = x.data_ptr<float>();
    const int64_t ldx = x.stride(0);
    uint16_t* dst = reinterpret_cast<uint16_t*>(xin.data_ptr());
    at::parallel_for(0, T, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) to_bf16(isa, src + t * ldx, dst + t * K, K);
    });
  }
  const XPrep xp8 = nibbles ? prepare_gemm(isa, x, true, halves) : XPrep{};
  const XPrep xp16 = wide ? prepare_gemm(isa, x, false) : XPrep{};
  const bool vnni = isa == kAvx512;
  const int64_t block = vnni ? gemm_block_rows_vnni512(K) : gemm_block_rows(K);
  const int64_t scratch = vnni ? gemm_scratch_bytes_vnni512(K) : gemm_scratch_bytes(K);
  int64_t col = 0;
  for (const QSeg& s : segs) {
    if (in_ints(s)) {
      // a block of rows at a time, smaller where a segment has fewer than ~4 blocks a thread (GQA's k and v)
      const int64_t pieces = 4 * at::get_num_threads(), per = (s.N + pieces - 1) / pieces;
      dynamic_for(s.N, std::min(block, (per + 15) / 16 * 16), [&](int64_t n0, int64_t n1) {
        thread_local std::vector<uint8_t> kept;
        uint8_t* buf = reused(kept, scratch);
        if (vnni && gemm_small_vnni512_takes(s, T)) {
          gemm_small_vnni512(s, xp8, n0, n1, out + col, ldo);
        } else if (vnni) {
          gemm_rows_vnni512(s, xp8, n0, n1, out + col, ldo, buf);
        } else if (isa == kAvx2 && gemm_small_avx2_takes(s, T)) {
          gemm_small_avx2(s, xp8, n0, n1, out + col, ldo);
        } else {
          gemm_rows(s, takes_x8(s) ? xp8 : xp16, n0, n1, out + col, ldo, buf);
        }
      });
    } else {
      tile_gemm(isa, x, xin, s, bf16, out + col, ldo);
    }
    col += s.N;
  }
}

}  // namespace pg
