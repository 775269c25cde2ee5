// playground::vocab_splits: every split of a word into two vocabulary tokens, for building BPE merges from a
// SentencePiece vocabulary (gguf_tokenizer._merges). Gemma's 262k tokens give ~2M candidate splits; looking them up
// from Python took ~1 s of a first load.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstdint>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace {

// The NUL-separated strings of a uint8 tensor.
std::vector<std::string_view> split_joined(const at::Tensor& joined) {
  TORCH_CHECK(joined.scalar_type() == at::kByte && joined.dim() == 1 && joined.is_contiguous(),
              "vocab_splits: strings must be contiguous uint8, joined by NUL");
  const char* p = reinterpret_cast<const char*>(joined.data_ptr<uint8_t>());
  const int64_t n = joined.numel();
  std::vector<std::string_view> out;
  int64_t start = 0;
  for (int64_t i = 0; i <= n; ++i) {
    if (i == n || p[i] == 0) {
      out.emplace_back(p + start, static_cast<size_t>(i - start));
      start = i + 1;
    }
  }
  return out;
}

at::Tensor as_tensor(std::vector<int64_t>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::TensorOptions().dtype(at::kLong));
  std::copy(v.begin(), v.end(), t.data_ptr<int64_t>());
  return t;
}

// vocab: the tokens (UTF-8, NUL-joined; a repeated token maps to its last id, as a Python dict built in order);
// words: the words to split. For each word w and each character boundary c inside it (c counted in code points)
// where both w[:c] and w[c:] are tokens: (left id, right id, w's index, c), as four int64 tensors.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> vocab_splits(const at::Tensor& vocab,
                                                                         const at::Tensor& words) {
  const auto tokens = split_joined(vocab);
  std::unordered_map<std::string_view, int64_t> ids;
  ids.reserve(tokens.size() * 2);
  for (size_t i = 0; i < tokens.size(); ++i) ids[tokens[i]] = static_cast<int64_t>(i);
  const auto ws = split_joined(words);
  std::vector<int64_t> left, right, where, cut;
  for (size_t w = 0; w < ws.size(); ++w) {
    const std::string_view s = ws[w];
    int64_t chars = 0;
    for (size_t b = 1; b < s.size(); ++b) {
      if ((static_cast<uint8_t>(s[b]) & 0xC0) == 0x80) continue;  // inside a UTF-8 sequence
      ++chars;
      const auto l = ids.find(s.substr(0, b));
      if (l == ids.end()) continue;
      const auto r = ids.find(s.substr(b));
      if (r == ids.end()) continue;
      left.push_back(l->second);
      right.push_back(r->second);
      where.push_back(static_cast<int64_t>(w));
      cut.push_back(chars);
    }
  }
  return {as_tensor(left), as_tensor(right), as_tensor(where), as_tensor(cut)};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(playground, m) {
  m.def("vocab_splits(Tensor vocab, Tensor words) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(playground, CPU, m) { m.impl("vocab_splits", &vocab_splits); }
