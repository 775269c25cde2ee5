// How the AVX512-VNNI decode loops walk a block of weight rows: a row at a time, or, where x is too large to stay
// in L1 beside the weights streaming through it, a chunk of x's groups at a time over all the block's rows.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels.h"
#include "prefetch.h"
#include "rows.h"

#if PG_X86
namespace pg {

// Where x nearly fills L1 (32 KB on Zen 4 and most x86 cores), the weights streaming through it push it out: a pass
// then walks the block's rows a chunk of x at a time (kXChunk bytes of it). Past kXChunkAbove only, as measured
// in one process, alternating, on a 2-core Zen 4: Llama-3.1-8B's decode (its down projection's int16 x: 30-38 KB)
// +10% on Q4_0, +1-12% on Q4_K_M, one GEMV of Q4_0 / Q4_K / Q6_K at K 14336 +15-56%; at 21-29 KB (Qwen2.5-3B's
// K 11008) chunks cost 2-4% and at 8 KB chunks were slower than none. Only for one or two rows of x: those passes
// are bound by memory (two rows at K 8192: +12-31%); from four rows on they are bound by the multiplies, and chunks
// cost 5-15%.
constexpr int64_t kXChunkAbove = 30 * 1024;
constexpr int64_t kXChunk = 16 * 1024;

// The groups of a chunk (a multiple of 16) for TT rows of x of ``eighths`` / 8 bytes a value, or ``whole`` (no
// chunks).
inline int64_t x_chunk_groups(int64_t whole, int TT, int eighths) {
  const int64_t group_bytes = kGroup * TT * eighths / 8;
  if (TT > 2 || whole * group_bytes <= kXChunkAbove) return whole;
  return std::max<int64_t>(16, kXChunk / group_bytes / 16 * 16);
}

// Where a pass prefetches: the lines of ``row`` at the offsets it reads plus ``shift`` (a row ahead in the chunked
// order), or, with ``burst``, kPrefetchBytes ahead in its own row (prefetch_burst); neither when row is null.
struct Ahead {
  const uint8_t* row;
  int64_t shift;
  bool burst;
};

// The lines of bytes [o0, o1) of a.row + a.shift.
PG_INLINE void prefetch_span(const Ahead& a, int64_t o0, int64_t o1) {
  const uintptr_t p0 = reinterpret_cast<uintptr_t>(a.row) + a.shift + o0, p1 = p0 + (o1 - o0);
  for (uintptr_t p = p0 & ~uintptr_t{63}; p < p1; p += 64) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T2);
}

// The chunked order reads row n's groups [c0, c1) then row n + 1's: kPrefetchBytes ahead is row n + d at the same
// offsets, or past the block's end the first rows' next chunk, or past the last chunk the next block's first rows.
// (Offsets from rb / G bytes a group: only where prefetches land, never what is read.)
inline Ahead chunk_ahead(const QSeg& s, int64_t n, int64_t n0, int64_t n1, int64_t c0, int64_t c1, int64_t whole) {
  const int64_t rb = row_bytes(s), G = s.K / kGroup, span = std::max<int64_t>(1, (c1 - c0) * rb / G);
  const int64_t to = n + std::max<int64_t>(1, (kPrefetchBytes + span - 1) / span);
  if (to < n1) return {s.q + to * rb, 0, false};
  if (c1 < whole) return {s.q + (n0 + to - n1) * rb, (c1 - c0) * rb / G, false};
  if (to < s.N) return {s.q + to * rb, -c0 * rb / G, false};
  return {nullptr, 0, false};
}

// Rows [blk.n0, n1) through PASS (its groups [0, whole) in spans, then a row's end):
//   pass.span(n, g0, g1, acc, ahead): row n's groups [g0, g1) into acc (g0 a multiple of 16);
//   pass.finish(n, acc, pending): the rest of row n, its result into pending.
// A row at a time while x fits (rows longer than kPrefetchBurst asked for in bursts as they are read, shorter ones
// whole, a few rows ahead); else chunk by chunk of x over the rows, each row's accumulators kept between chunks
// (``kept``): a row's sums are added in the same order either way, so the results are the same to the bit.
template <int TT, int U, class PASS>
PG_TARGET_VNNI512 PG_INLINE void pass_rows(const Args& a, const Block& blk, int64_t t0, int64_t n1, int64_t whole,
                                           int eighths, const PASS& pass) {
  const int64_t rb = row_bytes(*a.s);
  Pending<TT> pending;
  pending.first = blk.n0;
  if constexpr (TT <= 2) {  // (x_chunk_groups: no chunks for more rows of x)
    const int64_t chunk = n1 - blk.n0 <= kRowBlock ? x_chunk_groups(whole, TT, eighths) : whole;
    if (chunk < whole) {
      alignas(64) __m512 kept[kRowBlock][U][TT];
      for (int64_t c0 = 0; c0 < whole; c0 += chunk) {
        const int64_t c1 = std::min(whole, c0 + chunk);
        for (int64_t n = blk.n0; n < n1; ++n) {
          __m512 acc[U][TT];
          for (int u = 0; u < U; ++u)
            for (int t = 0; t < TT; ++t) acc[u][t] = c0 == 0 ? _mm512_setzero_ps() : kept[n - blk.n0][u][t];
          pass.span(n, c0, c1, acc, chunk_ahead(*a.s, n, blk.n0, n1, c0, c1, whole));
          if (c1 < whole) {
            for (int u = 0; u < U; ++u)
              for (int t = 0; t < TT; ++t) kept[n - blk.n0][u][t] = acc[u][t];
            continue;
          }
          pass.finish(n, acc, pending);
          if (pending.count == 8) flush(pending, a, t0);
        }
      }
      if (pending.count) flush(pending, a, t0);
      return;
    }
  }
  const bool bursts = rb > kPrefetchBurst;
  for (int64_t n = blk.n0; n < n1; ++n) {
    if (!bursts) prefetch_row(*a.s, n + a.prefetch_rows, rb);
    __m512 acc[U][TT];
    for (int u = 0; u < U; ++u)
      for (int t = 0; t < TT; ++t) acc[u][t] = _mm512_setzero_ps();
    pass.span(n, 0, whole, acc, Ahead{nullptr, 0, bursts});
    pass.finish(n, acc, pending);
    if (pending.count == 8) flush(pending, a, t0);
  }
  if (pending.count) flush(pending, a, t0);
}

// The AVX512-VNNI loop of int4, int5 and int8 rows (KERNEL: vnni_quads.h's Quad, int8_rows.cpp's Int8Pair; int6
// has its own, int6_rows.cpp): per 16 groups, their scales times x scales (d16), then KERNEL::step over kPer groups
// at a time (a lane of its integer sums belongs to group lane / (16 / kPer), scaled by a permute of d16), the last
// groups by KERNEL::tail. kSym: no per-group offset term after the loop (else the offsets times x's fp32 group
// sums; symmetric weights' -8 (int5: -16) * scale times x's sums as the int8 mode rounds it, see kernels.h).
// kXEighths: x's eighths of a byte a value that a step reads (x_chunk_groups).
template <int TT, int U, class KERNEL>
struct VnniPass {
  static constexpr int PER = KERNEL::kPer, STEPS = 16 / PER;
  const Args& a;
  const KERNEL& kern;
  int64_t t0, G, whole, rb;
  __m512i pick[STEPS];  // lane i of step k in a 16-group block: group PER * k + i / STEPS

  PG_TARGET_VNNI512 PG_INLINE void span(int64_t n, int64_t g0, int64_t g1, __m512 (&acc)[U][TT],
                                        const Ahead& ahead) const {
    const uint8_t* row = a.s->q + n * rb;
    for (int64_t g16 = g0; g16 < g1; g16 += 16) {
      const int64_t o0 = g16 * rb / G, o1 = std::min(rb, (g16 + 16) * rb / G);
      if (ahead.burst) {
        prefetch_burst(*a.s, row, o0, o1, kPrefetchBytes);
      } else if (ahead.row) {
        prefetch_span(ahead, o0, o1);
      }
      const __mmask16 m = groups_mask(whole - g16);
      const __m512 s16 = scales16(*a.s, n, G, g16, m);
      __m512 d16[TT];
      for (int t = 0; t < TT; ++t) d16[t] = _mm512_mul_ps(s16, _mm512_maskz_loadu_ps(m, kern.xs + t * a.x->Gp + g16));
      const int steps = static_cast<int>(std::min<int64_t>(STEPS, (whole - g16) / PER));
      for (int k = 0; k < STEPS; ++k) {
        if (k < steps) kern.template step<TT>(acc[k % U], row, d16, pick[k], g16 + PER * k);
      }
    }
  }

  PG_TARGET_VNNI512 PG_INLINE void finish(int64_t n, const __m512 (&acc)[U][TT], Pending<TT>& pending) const {
    const XPrep& xp = *a.x;
    __m256 rest[TT];
    for (int t = 0; t < TT; ++t) rest[t] = _mm256_setzero_ps();
    kern.template tail<TT>(rest, a.s->q + n * rb, *a.s, n, whole, G);
    for (int t = 0; t < TT; ++t) {
      __m512 s = acc[0][t];
      for (int u = 1; u < U; ++u) s = _mm512_add_ps(s, acc[u][t]);
      const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
      if (!KERNEL::kSym) {  // the offset term from x's group sums (symmetric weights: -8 or -16 * scale)
        const float* sx = offset_sums(xp) + (t0 + t) * xp.Gp;
        rest[t] = a.s->kparams ? super_offsets_dot8(rest[t], *a.s, n, sx, G)
                  : a.s->offsets ? dot_halves8(rest[t], a.s->offsets + n * G, sx, G)
                                 : _mm256_fmadd_ps(_mm256_set1_ps(implied_offset(a.s->kind)),
                                                   dot_halves8(_mm256_setzero_ps(), a.s->scales + n * G, sx, G), rest[t]);
      }
      pending.r[t][pending.count] = _mm256_add_ps(_mm256_add_ps(_mm512_castps512_ps256(s), hi), rest[t]);
    }
    ++pending.count;
  }
};

template <int TT, class KERNEL>
PG_TARGET_VNNI512 PG_INLINE void vnni_rows(const Args& a, const Block& blk, int64_t t0, int64_t n1,
                                           const KERNEL& kern) {
  constexpr int U = TT <= 2 ? 2 : 1;  // accumulator sets, so small T has independent FMA chains
  using Pass = VnniPass<TT, U, KERNEL>;
  const int64_t G = a.x->G;
  Pass pass{a, kern, t0, G, G / Pass::PER * Pass::PER, row_bytes(*a.s), {}};
  for (int k = 0; k < Pass::STEPS; ++k) {
    pass.pick[k] = _mm512_add_epi32(
        _mm512_set1_epi32(Pass::PER * k),
        _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Pass::PER == 4 ? 2 : 3));
  }
  pass_rows<TT, U>(a, blk, t0, n1, pass.whole, KERNEL::kXEighths, pass);
}

}  // namespace pg
#endif
