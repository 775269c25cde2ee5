// playground::bpe_merges: the ranked BPE merges of a SentencePiece vocabulary (gguf_tokenizer._merges): every split
// of a token into two vocabulary tokens, best merged token first. Gemma's 262k tokens give ~2M candidate splits
// and 515k merges; finding and ranking them took ~0.6 s of a first load through Python and numpy.
// pg_pair_list (plain C, called through ctypes.PyDLL, the GIL held): the ranked ids as the list of (left, right)
// string pairs the tokenizers library takes, built in C (Gemma's: 0.07-0.10 s here; 0.21 s through map/zip).
#include <Python.h>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

// The NUL-separated strings of a uint8 tensor.
std::vector<std::string_view> split_joined(const at::Tensor& joined) {
  TORCH_CHECK(joined.scalar_type() == at::kByte && joined.dim() == 1 && joined.is_contiguous(),
              "bpe_merges: strings must be contiguous uint8, joined by NUL");
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

constexpr uint64_t kFnvBasis = 1469598103934665603ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

inline uint64_t fnv_step(uint64_t h, char c) { return (h ^ static_cast<uint8_t>(c)) * kFnvPrime; }

inline uint64_t fnv(std::string_view s) {
  uint64_t h = kFnvBasis;
  for (char c : s) h = fnv_step(h, c);
  return h;
}

// Open-addressing map from a token's text to its last id and first place. FNV-1a hashes extend byte by byte, so a
// word's prefixes are hashed in one pass (std::unordered_map hashed each prefix from scratch, chained buckets).
class TokenTable {
 public:
  explicit TokenTable(const std::vector<std::string_view>& tokens) : tokens_(tokens) {
    size_t size = 16;
    while (size < tokens.size() * 2) size <<= 1;
    mask_ = size - 1;
    slots_.assign(size, Slot{0, -1, -1});
    first_of_.resize(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
      const uint64_t h = fnv(tokens[i]);
      size_t s = index(h);
      while (slots_[s].last >= 0 && !(slots_[s].hash == h && tokens_[slots_[s].last] == tokens[i])) s = (s + 1) & mask_;
      if (slots_[s].last < 0) slots_[s] = Slot{h, static_cast<int32_t>(i), static_cast<int32_t>(i)};
      else slots_[s].last = static_cast<int32_t>(i);  // a repeated token takes its last id, as a dict built in order
      first_of_[i] = slots_[s].first;
    }
  }

  // The id of the token with text ``s`` and hash ``h``, or -1.
  int64_t find(std::string_view s, uint64_t h) const {
    for (size_t at = index(h);; at = (at + 1) & mask_) {
      const Slot& slot = slots_[at];
      if (slot.last < 0) return -1;
      if (slot.hash == h && tokens_[slot.last] == s) return slot.last;
    }
  }

  int64_t first_of(size_t i) const { return first_of_[i]; }
  int64_t last_of(size_t i) const { return find(tokens_[i], fnv(tokens_[i])); }

 private:
  struct Slot {  // 16 bytes: Gemma's table is 8 MiB, half what 64-bit ids took
    uint64_t hash;
    int32_t last;
    int32_t first;
  };
  size_t index(uint64_t h) const { return static_cast<size_t>(h ^ (h >> 29)) & mask_; }

  const std::vector<std::string_view>& tokens_;
  std::vector<Slot> slots_;
  std::vector<int64_t> first_of_;
  size_t mask_ = 0;
};

struct Merge {
  double score;  // the merged token's (NaN as -inf, with ``nan`` set)
  bool nan;
  int32_t cut;   // characters in the left part
  int32_t right_chars;
  int32_t word;  // the merged token's place among the distinct tokens
  int32_t left;
  int32_t right;
};

// Best first: higher score, then longer left part, then longer right part, then earlier token (transformers'
// generate_merges order; NaN scores after every other, as numpy's sort puts them).
bool before(const Merge& a, const Merge& b) {
  if (a.nan != b.nan) return b.nan;
  if (a.score != b.score) return a.score > b.score;
  if (a.cut != b.cut) return a.cut > b.cut;
  if (a.right_chars != b.right_chars) return a.right_chars > b.right_chars;
  return a.word < b.word;
}

// The merges of word ``w`` (text ``s``, place ``word``) into ``out``: every character boundary where both parts
// are tokens.
void word_merges(const TokenTable& table, std::string_view s, int32_t word, double score, bool nan,
                 std::vector<Merge>& out) {
  int32_t chars = 0;
  for (char c : s) chars += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  uint64_t prefix = fnv_step(kFnvBasis, s[0]);
  int32_t cut = 0;
  for (size_t b = 1; b < s.size(); prefix = fnv_step(prefix, s[b]), ++b) {
    if ((static_cast<uint8_t>(s[b]) & 0xC0) == 0x80) continue;  // inside a UTF-8 sequence
    ++cut;
    const int64_t l = table.find(s.substr(0, b), prefix);
    if (l < 0) continue;
    const int64_t r = table.find(s.substr(b), fnv(s.substr(b)));
    if (r < 0) continue;
    out.push_back(Merge{score, nan, cut, chars - cut, word, static_cast<int32_t>(l), static_cast<int32_t>(r)});
  }
}

// vocab: the tokens (UTF-8, NUL-joined); scores: float64, one per token. The distinct tokens, in the order they
// first appear, each with the score of its last appearance, are the words; a part's id is its token's last id.
// Returns the (left id, right id) of every merge, best first, as two int64 tensors.
std::tuple<at::Tensor, at::Tensor> bpe_merges(const at::Tensor& vocab, const at::Tensor& scores) {
  const auto tokens = split_joined(vocab);
  TORCH_CHECK(tokens.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), "bpe_merges: too many tokens");
  TORCH_CHECK(scores.scalar_type() == at::kDouble && scores.dim() == 1 && scores.is_contiguous() &&
                  scores.numel() == static_cast<int64_t>(tokens.size()),
              "bpe_merges: scores must be contiguous float64, one per token");
  const double* score = scores.data_ptr<double>();
  const TokenTable table(tokens);
  std::vector<int32_t> words;  // token index of each distinct token, in first-appearance order
  words.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i)
    if (table.first_of(i) == static_cast<int64_t>(i)) words.push_back(static_cast<int32_t>(i));

  const int64_t parts = std::max<int64_t>(1, at::get_num_threads());
  std::vector<std::vector<Merge>> found(parts);
  const int64_t n = static_cast<int64_t>(words.size());
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      std::vector<Merge>& out = found[p];
      out.reserve(static_cast<size_t>(4 * n / parts));
      for (int64_t w = p * n / parts; w < (p + 1) * n / parts; ++w) {
        const std::string_view s = tokens[words[w]];
        if (s.size() < 2) continue;
        const double sc = score[table.last_of(words[w])];
        const bool nan = std::isnan(sc);
        word_merges(table, s, static_cast<int32_t>(w), nan ? -std::numeric_limits<double>::infinity() : sc, nan, out);
      }
      std::sort(out.begin(), out.end(), before);  // each thread sorts its part; the parts are merged below
    }
  });
  std::vector<Merge> merges = std::move(found[0]);
  for (int64_t p = 1; p < parts; ++p) {
    std::vector<Merge> joined(merges.size() + found[p].size());
    std::merge(merges.begin(), merges.end(), found[p].begin(), found[p].end(), joined.begin(), before);
    merges = std::move(joined);
    std::vector<Merge>().swap(found[p]);
  }

  const auto count = static_cast<int64_t>(merges.size());
  at::Tensor left = at::empty({count}, at::TensorOptions().dtype(at::kLong));
  at::Tensor right = at::empty({count}, at::TensorOptions().dtype(at::kLong));
  int64_t* l = left.data_ptr<int64_t>();
  int64_t* r = right.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; ++i) {
    l[i] = merges[i].left;
    r[i] = merges[i].right;
  }
  return {left, right};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(playground, m) { m.def("bpe_merges(Tensor vocab, Tensor scores) -> (Tensor, Tensor)"); }

TORCH_LIBRARY_IMPL(playground, CPU, m) { m.impl("bpe_merges", &bpe_merges); }

// Exported by name for ctypes (MSVC exports nothing unmarked; GCC's visibility flags could hide it).
#if defined(_WIN32)
#define PG_C_EXPORT extern "C" __declspec(dllexport)
#else
#define PG_C_EXPORT extern "C" __attribute__((visibility("default")))
#endif

// tokens: a Python list of str; left / right: n ids into it. A new list of (tokens[left[i]], tokens[right[i]])
// tuples, or NULL with a Python exception set.
PG_C_EXPORT PyObject* pg_pair_list(PyObject* tokens, const int64_t* left, const int64_t* right, int64_t n) {
  if (!PyList_Check(tokens)) {
    PyErr_SetString(PyExc_TypeError, "pg_pair_list: tokens must be a list");
    return nullptr;
  }
  const Py_ssize_t size = PyList_GET_SIZE(tokens);
  PyObject* out = PyList_New(static_cast<Py_ssize_t>(n));
  if (out == nullptr) return nullptr;
  for (int64_t i = 0; i < n; ++i) {
    if (left[i] < 0 || left[i] >= size || right[i] < 0 || right[i] >= size) {
      Py_DECREF(out);
      PyErr_SetString(PyExc_IndexError, "pg_pair_list: token id out of range");
      return nullptr;
    }
    PyObject* pair = PyTuple_New(2);
    if (pair == nullptr) {
      Py_DECREF(out);
      return nullptr;
    }
    PyObject* a = PyList_GET_ITEM(tokens, left[i]);
    PyObject* b = PyList_GET_ITEM(tokens, right[i]);
    Py_INCREF(a);
    Py_INCREF(b);
    PyTuple_SET_ITEM(pair, 0, a);
    PyTuple_SET_ITEM(pair, 1, b);
    PyList_SET_ITEM(out, static_cast<Py_ssize_t>(i), pair);
  }
  return out;
}
