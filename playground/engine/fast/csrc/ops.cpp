// Quantized matmul ops for torch: playground::qlinear (int4/int8 segments: decode's gemv here, prefill's GEMM in
// gemm_ops.cpp), the older playground::int4_gemv, the dequantization op, and the code-path report / cap.
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/copy.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/mm.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels.h"
#include "ops.h"

namespace pg {

std::vector<QSeg> parse_segs(at::TensorList weights, c10::ArrayRef<int64_t> kinds, int64_t K, int64_t* n_total,
                             size_t* used) {
  std::vector<QSeg> segs;
  size_t i = 0;
  int64_t total = 0;
  TORCH_CHECK(K % kGroup == 0, "qlinear: K must be a multiple of 32, got ", K);
  const int64_t G = K / kGroup;
  for (const int64_t kind : kinds) {
    QSeg s;
    s.kind = static_cast<int>(kind);
    TORCH_CHECK(kind == kInt4 || kind == kInt8 || kind == kInt6 || kind == kInt5, "qlinear: unknown weight kind ",
                kind);
    const size_t n = nibble_kind(static_cast<int>(kind)) ? 3 : 2;
    TORCH_CHECK(i + n <= weights.size(), "qlinear: too few weight tensors for the kinds given");
    const at::Tensor& q = weights[i];
    const at::Tensor& sc = weights[i + 1];
    TORCH_CHECK(q.device().is_cpu() && q.dim() == 2 && q.is_contiguous(), "qlinear: weights must be contiguous CPU");
    s.N = q.size(0);
    s.K = K;
    // int5 at Q5_K's own block width: the file's blocks in place (QSeg::k5; only ever with K-quant parameters)
    s.k5 = kind == kInt5 && K % 256 == 0 && q.size(1) == K / 256 * kQ5KBlockBytes && sc.scalar_type() == at::kByte;
    if (nibble_kind(s.kind)) {
      TORCH_CHECK(q.scalar_type() == at::kByte && q.size(1) == row_bytes(s),
                  "qlinear: int4 / int5 qweight must be uint8 [N, K/2] / [N, int5_row_bytes(K)]");
      const at::Tensor& of = weights[i + 2];
      TORCH_CHECK(of.scalar_type() == at::kHalf && of.is_contiguous() && (of.numel() == s.N * G || of.numel() == 0),
                  "qlinear: int4 / int5 offsets must be float16 [N, K/32] (or empty: symmetric)");
      s.offsets = of.numel() ? reinterpret_cast<const uint16_t*>(of.data_ptr()) : nullptr;
    } else if (kind == kInt6) {
      TORCH_CHECK(K % 256 == 0 && q.scalar_type() == at::kByte && q.size(1) == K / 4 * 3,
                  "qlinear: int6 qweight must be uint8 [N, 3K/4] with K a multiple of 256");
    } else {
      TORCH_CHECK(q.scalar_type() == at::kChar && q.size(1) == K, "qlinear: int8 qweight must be int8 [N, K]");
    }
    s.q = reinterpret_cast<const uint8_t*>(q.data_ptr()) + (s.k5 ? kQ5KBlockBytes - kInt5QuadBytes : 0);
    if (kind == kInt6 || (nibble_kind(s.kind) && sc.scalar_type() == at::kByte)) {  // QSeg::kparams
      s.kparams = reinterpret_cast<const uint8_t*>(sc.data_ptr());
      TORCH_CHECK(K % 256 == 0 && !s.offsets && sc.scalar_type() == at::kByte && sc.is_contiguous() &&
                      sc.numel() == s.N * param_bytes_per_row(s, G),
                  "qlinear: K-quant params must be uint8 [N, K/256 * 20] (int6: * 18) with K a multiple of 256 and "
                  "no offsets");
    } else {
      TORCH_CHECK(sc.scalar_type() == at::kHalf && sc.is_contiguous() && sc.numel() == s.N * G,
                  "qlinear: scales must be float16 [N, K/32]");
      s.scales = reinterpret_cast<const uint16_t*>(sc.data_ptr());
    }
    segs.push_back(s);
    total += s.N;
    i += n;
  }
  if (n_total) *n_total = total;
  if (used) *used = i;
  return segs;
}

void linear_gemv(int isa, const float* x, int64_t T, int64_t K, const std::vector<QSeg>& segs, bool int8_x,
                 float* out, int64_t ldo) {
  const int64_t G = K / kGroup, Gp = (G + 7) / 8 * 8;
  std::vector<float> sumx(static_cast<size_t>(T * Gp), 0.f), xs(int8_x ? static_cast<size_t>(T * Gp) : 0, 0.f);
  std::vector<float> sumq(int8_x ? static_cast<size_t>(T * Gp) : 0, 0.f);
  std::vector<int8_t> xq(int8_x ? static_cast<size_t>(T * K) : 0);
  XPrep xp{x, T, K, G, Gp, int8_x, sumx.data(), int8_x ? xq.data() : nullptr, int8_x ? xs.data() : nullptr,
           int8_x ? sumq.data() : nullptr};
  // The AVX512-VNNI kernels' layouts of x (see kernels.h), for the weight kinds present.
  std::vector<int8_t> xq4, xh, xl, xh4, xl4;
  std::vector<float> xs16;
  std::vector<int16_t> x16p;
  std::vector<int8_t> x8p;
  std::vector<int32_t> c4, c16n, c8;
  std::vector<float> c6, xs6;
  const auto has = [&](int kind) {
    return std::any_of(segs.begin(), segs.end(), [kind](const QSeg& s) { return s.kind == kind; });
  };
  const auto bytes = [&](std::vector<int8_t>& v) {
    v.resize(static_cast<size_t>(T * K));
    return v.data();
  };
  if (x16_avx2(isa) && (has(kInt4) || has(kInt8) || has(kInt6) || has(kInt5)) &&
      (int8_x ? cpu().int8_dot < 2 || has(kInt6) || has(kInt5) : int16_x(isa))) {
    // AVX2: x as int16 (the int8 mode's int8 values too, where no AVX-VNNI multiplies bytes, or for int6 weights:
    // its only AVX2 kernel; int5's, as bytes), no constants but int6's
    if (has(kInt6)) {
      c6.resize(static_cast<size_t>(T * K / 16), 0.f);
      xp.c6 = c6.data();
      xs6.resize(static_cast<size_t>(T * K / 16), 0.f);
      xp.xs6 = xs6.data();
    }
    xs16.resize(static_cast<size_t>(T * Gp), 0.f);
    xp.xs16 = xs16.data();
    sumq.resize(static_cast<size_t>(T * Gp), 0.f);  // x's sums as rounded: Q4_0's offsets, and the int8 mode's
    xp.sumq = sumq.data();
    // zeros: a last odd group's partner. In the int8 mode int4 weights take x as bytes (x8p), the others as int16.
    const size_t padded = static_cast<size_t>(T * ((G + 1) / 2 * 2 * kGroup));
    if (!int8_x || has(kInt8) || has(kInt6)) {
      x16p.resize(padded, 0);
      xp.x16p = x16p.data();
    }
    if (int8_x && (has(kInt4) || has(kInt5))) {
      x8p.resize(padded, 0);
      xp.x8p = x8p.data();
    }
  } else if (quad_kernel(isa) && (int8_x || int16_x(isa))) {
    const auto consts = [&](std::vector<int32_t>& v, int per) {
      v.resize(static_cast<size_t>(T * c_stride(G, per)), 0);
      return v.data();
    };
    // int5 and int6 take x in the quad order as int4 does (int6 with constants of its own)
    const bool quads = has(kInt4) || has(kInt5) || has(kInt6), nibbles = has(kInt4) || has(kInt5);
    if (has(kInt6)) {
      c6.resize(static_cast<size_t>(T * K / 16), 0.f);
      xp.c6 = c6.data();
    }
    if (int8_x) {
      if (quads) xp.xq4 = bytes(xq4);
      if (nibbles) xp.c4 = consts(c4, 4);
      if (has(kInt8)) xp.c8 = consts(c8, 2);
    } else {
      xs16.resize(static_cast<size_t>(T * Gp), 0.f);
      xp.xs16 = xs16.data();
      xp.xh = bytes(xh);
      xp.xl = bytes(xl);
      if (quads) {
        xp.xh4 = bytes(xh4);
        xp.xl4 = bytes(xl4);
      }
      if (nibbles) xp.c4 = consts(c4, 4);
      if (has(kInt8)) xp.c16n = consts(c16n, 2);
    }
  }
  prepare_x(isa, xp);
  int64_t total = 0;
  std::vector<int64_t> starts;
  for (const QSeg& s : segs) {
    starts.push_back(total);
    total += s.N;
  }
  // Enough rows per task that a thread hand-off (a few microseconds) stays small next to the work.
  const int64_t work_per_row = K * std::min<int64_t>(T, kMaxT);
  const int64_t grain = std::max<int64_t>(16, (int64_t{1} << 16) / work_per_row);
  at::parallel_for(0, total, grain, [&](int64_t begin, int64_t end) {
    // Kept per thread: a fresh zeroed one per call cost a few microseconds, ~100 calls a decode step (seg_rows
    // writes every entry it reads).
    thread_local std::vector<float> kept;
    float* scratch = reused(kept, seg_scratch_floats(G));
    for (size_t i = 0; i < segs.size(); ++i) {
      const int64_t lo = std::max(begin, starts[i]), hi = std::min(end, starts[i] + segs[i].N);
      if (lo < hi) seg_rows(isa, segs[i], xp, lo - starts[i], hi - starts[i], out + starts[i], ldo, scratch);
    }
  });
}

}  // namespace pg

namespace {

// x [T, K] times the segments, into `into` when given (fp32 [T, total], contiguous), else a new tensor; returns it.
at::Tensor qlinear_run(const at::Tensor& x, at::TensorList weights, at::IntArrayRef kinds, bool int8_x, bool bf16,
                       bool gemm, const at::Tensor* into) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.scalar_type() == at::kFloat,
              "qlinear: x must be float32 [T, K] on the CPU");
  const int isa = pg::active_isa();
  const bool gemv = x.size(0) < pg::kGemmMinT && !gemm;
  int64_t total = 0;
  const auto segs = pg::parse_segs(weights, kinds, x.size(1), &total);
  // The bf16 GEMM reads rows with a stride as they are (prefill's gated MLP hands a view of half its columns); the
  // integer GEMMs round x row by row from a contiguous copy.
  const bool strided_ok = !gemv && pg::gemm_in_bf16(isa, bf16) && !pg::gemm_takes_integers(isa, segs, int8_x, bf16) &&
                          x.stride(1) == 1;
  const at::Tensor xc = strided_ok ? x : x.contiguous();
  if (into) {
    TORCH_CHECK(into->device().is_cpu() && into->scalar_type() == at::kFloat && into->is_contiguous() &&
                    into->dim() == 2 && into->size(0) == xc.size(0) && into->size(1) == total,
                "qlinear_into: out must be contiguous float32 [T, rows of the segments]");
  }
  at::Tensor out = into ? *into : at::empty({xc.size(0), total}, xc.options());
  if (xc.size(0) == 0 || total == 0) return out;
  if (gemv) {
    pg::linear_gemv(isa, xc.data_ptr<float>(), xc.size(0), xc.size(1), segs, int8_x, out.data_ptr<float>(), total);
  } else {
    pg::linear_gemm(isa, xc, segs, int8_x, bf16, out.data_ptr<float>(), total);
  }
  return out;
}

at::Tensor qlinear(const at::Tensor& x, at::TensorList weights, at::IntArrayRef kinds, bool int8_x, bool bf16,
                   bool gemm) {
  return qlinear_run(x, weights, kinds, int8_x, bf16, gemm, nullptr);
}

// qlinear into a buffer the caller keeps: prefill's gate/up product (tens of MiB a layer) in fresh memory each time
// cost a page fault per 4 KiB on its first write (~8% of a Qwen2.5-0.5B prefill).
void qlinear_into(const at::Tensor& x, at::TensorList weights, at::IntArrayRef kinds, const at::Tensor& out,
                  bool int8_x, bool bf16, bool gemm) {
  qlinear_run(x, weights, kinds, int8_x, bf16, gemm, &out);
}

// act(gate) * up written over the gate half of gu = [gate | up] (fp32 [T, 2I], contiguous; act 0 SiLU, 1 GELU-tanh):
// prefill's gated MLP in one pass, with the fused decode step's arithmetic (torch took an activation pass, then a
// multiply).
void gated_inplace(const at::Tensor& gu, int64_t act) {
  TORCH_CHECK(gu.device().is_cpu() && gu.dim() == 2 && gu.scalar_type() == at::kFloat && gu.is_contiguous() &&
                  gu.size(1) % 2 == 0 && (act == 0 || act == 1),
              "gated_: gu must be contiguous float32 [T, 2I] on the CPU, act 0 (SiLU) or 1 (GELU-tanh)");
  const int isa = pg::active_isa();
  const int64_t inter = gu.size(1) / 2;
  float* p = gu.data_ptr<float>();
  at::parallel_for(0, gu.size(0), std::max<int64_t>(1, 8192 / std::max<int64_t>(1, inter)), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) pg::gated_activation(isa, static_cast<int>(act), p + t * 2 * inter, inter,
                                                         p + t * 2 * inter);
  });
}

// Prefill's RMS norms in one pass per row, threaded (torch's took several passes and ~1.4 G elements/s: ~6% of a
// Gemma 3 prefill, four norms a layer plus q/k's). x: fp32 [rows, n] or [rows, heads, n] with the last dim
// contiguous (q and k are views into the qkv product); the result is contiguous. With res (add_rms_norm_): x += res
// first, in place (x contiguous [rows, n]).
static at::Tensor norm_rows(const at::Tensor& x, const at::Tensor* res, const at::Tensor& w, double eps) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat && (x.dim() == 2 || x.dim() == 3) &&
                  x.stride(-1) == 1 && w.scalar_type() == at::kFloat && w.is_contiguous() && w.dim() == 1 &&
                  w.size(0) == x.size(-1),
              "rms_norm: x must be float32 [rows, (heads,) n] with its last dim contiguous, w float32 [n]");
  const int64_t n = x.size(-1), inner = x.dim() == 3 ? x.size(1) : 1, rows = x.size(0) * inner;
  const int64_t s0 = x.stride(0), s1 = x.dim() == 3 ? x.stride(1) : 0;
  if (res) {
    TORCH_CHECK(x.is_contiguous() && res->sizes() == x.sizes() && res->is_contiguous() &&
                    res->scalar_type() == at::kFloat,
                "add_rms_norm_: x and res must be contiguous float32 of one shape");
  }
  at::Tensor out = at::empty(x.sizes(), x.options());
  const int isa = pg::active_isa();
  float* xp = x.data_ptr<float>();
  const float* rp = res ? res->data_ptr<float>() : nullptr;
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / n), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t at = (r / inner) * s0 + (r % inner) * s1;
      pg::rms_norm_row(isa, xp + at, rp ? rp + r * n : nullptr, wp, op + r * n, n, static_cast<float>(eps));
    }
  });
  return out;
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) { return norm_rows(x, nullptr, w, eps); }

at::Tensor add_rms_norm_(const at::Tensor& x, const at::Tensor& res, const at::Tensor& w, double eps) {
  return norm_rows(x, &res, w, eps);
}

at::Tensor int4_gemv(const at::Tensor& x, const at::Tensor& qweight, const at::Tensor& scales,
                     const at::Tensor& offsets, bool int8_x) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "int4_gemv: x must be float32 [T, K]");
  TORCH_CHECK(qweight.dim() == 2 && qweight.size(1) * 2 == x.size(1), "int4_gemv: x has K=", x.size(1),
              " but qweight holds ", qweight.size(1) * 2);
  const at::Tensor ws[] = {qweight.contiguous(), scales.contiguous(), offsets.contiguous()};
  const int64_t kinds[] = {pg::kInt4};
  return qlinear(x, ws, kinds, int8_x, false, false);
}

at::Tensor dequantize(at::TensorList weights, at::IntArrayRef kinds, int64_t K) {
  int64_t total = 0;
  const auto segs = pg::parse_segs(weights, kinds, K, &total);
  at::Tensor out = at::empty({total, K}, weights[0].options().dtype(at::kFloat));
  int64_t row = 0;
  for (const pg::QSeg& s : segs) {
    pg::dequant_rows(pg::active_isa(), s, 0, s.N, out.data_ptr<float>() + row * K, nullptr);
    row += s.N;
  }
  return out;
}

// Which code paths the kernels take: "<fp32 path> <int8 path> <threads>[ bf16]", e.g. "avx512 avx512-vnni openmp
// bf16" ("single-thread" when built without OpenMP: at::parallel_for is header code that needs -fopenmp).
std::string kernel_isa() {
  const int isa = pg::active_isa();
#ifdef _OPENMP
  std::string s = std::string(pg::isa_name(isa)) + " " + pg::int8_dot_name(isa) + " openmp";
#else
  std::string s = std::string(pg::isa_name(isa)) + " " + pg::int8_dot_name(isa) + " single-thread";
#endif
  if (pg::bf16_gemm_available(isa)) s += " bf16";  // prefill's GEMM in bf16 (unless exact fp32)
  return s;
}

// Caps the code path at isa ("avx512", "avx2", "scalar"; for tests and benches); returns the paths now taken.
std::string kernel_set_isa(const std::string& isa) {
  int cap = -1;
  for (int i = 0; i < 3; ++i)
    if (isa == pg::isa_name(i)) cap = i;
  TORCH_CHECK(cap >= 0, "int4_gemv_set_isa: unknown isa '", isa, "' (avx512, avx2 or scalar)");
  pg::set_isa_cap(cap);
  return kernel_isa();
}

// Exact fp32 activations on (1) or off (0) for the int16-x kernels, or -1 to ask; returns the state now.
bool kernel_exact_fp32(int64_t on) {
  if (on >= 0) pg::set_exact_fp32(on != 0);
  return pg::exact_fp32();
}

}  // namespace

// A fragment, so other playground::* ops can live in other libraries.
TORCH_LIBRARY_FRAGMENT(playground, m) {
  // gemm: the tiled GEMM whatever T is (prefill: a position's result must not depend on how many ran with it).
  m.def("qlinear(Tensor x, Tensor[] weights, int[] kinds, bool int8_x=False, bool bf16=False, bool gemm=False) "
        "-> Tensor");
  m.def("qlinear_into(Tensor x, Tensor[] weights, int[] kinds, Tensor(a!) out, bool int8_x=False, bool bf16=False, "
        "bool gemm=False) -> ()");
  m.def("qdequantize(Tensor[] weights, int[] kinds, int k) -> Tensor");
  m.def("gated_(Tensor(a!) gu, int act) -> ()");
  m.def("rms_norm(Tensor x, Tensor w, float eps) -> Tensor");
  m.def("add_rms_norm_(Tensor(a!) x, Tensor res, Tensor w, float eps) -> Tensor");
  m.def("int4_gemv(Tensor x, Tensor qweight, Tensor scales, Tensor offsets, bool int8_x=False) -> Tensor");
  m.def("int4_gemv_isa() -> str", &kernel_isa);
  m.def("int4_gemv_set_isa(str isa) -> str", &kernel_set_isa);
  m.def("int4_gemv_exact_fp32(int on) -> bool", &kernel_exact_fp32);
}

TORCH_LIBRARY_IMPL(playground, CPU, m) {
  m.impl("qlinear", &qlinear);
  m.impl("qlinear_into", &qlinear_into);
  m.impl("qdequantize", &dequantize);
  m.impl("gated_", &gated_inplace);
  m.impl("rms_norm", &rms_norm);
  m.impl("add_rms_norm_", &add_rms_norm_);
  m.impl("int4_gemv", &int4_gemv);
}
