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
#include <cstdio>
#include <limits>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

// The NUL-separated strings of the n bytes at p.
std::vector<std::string_view> split_nul(const char* p, size_t n) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= n; ++i) {
    if (i == n || p[i] == 0) {
      out.emplace_back(p + start, i - start);
      start = i + 1;
    }
  }
  return out;
}

// The NUL-separated strings of a uint8 tensor.
std::vector<std::string_view> split_joined(const at::Tensor& joined) {
  TORCH_CHECK(joined.scalar_type() == at::kByte && joined.dim() == 1 && joined.is_contiguous(),
              "bpe_merges: strings must be contiguous uint8, joined by NUL");
  return split_nul(reinterpret_cast<const char*>(joined.data_ptr<uint8_t>()), static_cast<size_t>(joined.numel()));
}

// Characters in UTF-8 text (bytes that do not continue a sequence).
inline int32_t utf8_chars(std::string_view s) {
  int32_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
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
    const Slot* slot = find_slot(s, h);
    return slot == nullptr ? -1 : slot->last;
  }

  struct Ids {
    int32_t last;   // the id a vocabulary dict built in order keeps
    int32_t first;  // its place among the distinct tokens
  };
  // The ids of the token with text ``s``, or {-1, -1}.
  Ids find_ids(std::string_view s) const {
    const Slot* slot = find_slot(s, fnv(s));
    return slot == nullptr ? Ids{-1, -1} : Ids{slot->last, slot->first};
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
  const Slot* find_slot(std::string_view s, uint64_t h) const {
    for (size_t at = index(h);; at = (at + 1) & mask_) {
      const Slot& slot = slots_[at];
      if (slot.last < 0) return nullptr;
      if (slot.hash == h && tokens_[slot.last] == s) return &slot;
    }
  }

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
  const int32_t chars = utf8_chars(s);
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

// ---------------------------------------------------------------- SentencePiece BPE without a merges table
// pg_spm_*: the tokenizers library's BPE, as gguf_tokenizer builds it for a SentencePiece vocabulary (every split
// of a token into two tokens a merge, ranked as bpe_merges ranks them), run here on the merges' definition instead
// of a table: two adjacent symbols merge when their texts joined are a token. Building the table inside the
// tokenizers library took ~0.75 s of Gemma's first load (515k merges); this needs only the token table. The
// tokenizer then maps each piece returned here to its id (BPE with ignore_merges). The merge loop is the library's
// Word::merge_all: a heap of (rank, position), the best rank first, then the leftmost; stale entries skipped.
namespace {

class SpmModel {
 public:
  SpmModel(std::string joined, const double* scores, size_t n_tokens)
      : blob_(std::move(joined)), tokens_(split_nul(blob_.data(), blob_.size())), table_(tokens_),
        scores_(scores, scores + n_tokens), chars_(n_tokens) {
    for (size_t i = 0; i < n_tokens; ++i) chars_[i] = utf8_chars(tokens_[i]);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      byte_ids_[b] = table_.find_ids(name).last;
    }
  }

  // True when the run here equals the library's: every byte has its fallback token (so no character is ever
  // unknown or dropped), and no token joins a byte token to another token (so fallback bytes never merge, and
  // every piece is a span of the text).
  bool exact() const {
    for (int32_t id : byte_ids_)
      if (id < 0) return false;
    for (std::string_view t : tokens_) {
      if (t.size() <= 6) continue;
      if (is_byte_token(t.substr(0, 6)) && table_.find_ids(t.substr(6)).last >= 0) return false;
      if (is_byte_token(t.substr(t.size() - 6)) && table_.find_ids(t.substr(0, t.size() - 6)).last >= 0) return false;
    }
    return true;
  }

  // The character offsets where the pieces of ``text`` (UTF-8) end, into ``ends``; returns their count.
  int64_t split(std::string_view text, int64_t* ends) const {
    std::vector<Symbol> sym;
    sym.reserve(text.size());
    int32_t chars = 0;
    for (size_t at = 0; at < text.size(); ++chars) {
      size_t len = 1;
      while (at + len < text.size() && (static_cast<uint8_t>(text[at + len]) & 0xC0) == 0x80) ++len;
      const int32_t id = table_.find_ids(text.substr(at, len)).last;
      if (id >= 0) {
        sym.push_back(Symbol{id, chars, chars + 1});
      } else {  // byte fallback: one symbol per byte, all spanning the character
        for (size_t b = 0; b < len; ++b) sym.push_back(Symbol{byte_ids_[static_cast<uint8_t>(text[at + b])], chars, chars + 1});
      }
      at += len;
    }
    const auto n = static_cast<int32_t>(sym.size());
    for (int32_t i = 0; i < n; ++i) {
      sym[i].prev = i - 1;
      sym[i].next = i + 1 < n ? i + 1 : -1;
    }
    std::priority_queue<Candidate, std::vector<Candidate>, Later> heap;
    std::string joined;
    auto push = [&](int32_t pos) {
      const int32_t right = sym[pos].next;
      if (right < 0) return;
      Candidate c;
      if (pair(sym[pos].id, sym[right].id, joined, c)) {
        c.pos = pos;
        c.left = sym[pos].id;
        c.right = sym[right].id;
        heap.push(c);
      }
    };
    for (int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      const Candidate top = heap.top();
      heap.pop();
      Symbol& left = sym[top.pos];
      // Stale: either symbol changed since. (The library compares the merged ids instead: the same test here,
      // since a changed pair covers a longer span of text, which is another token.)
      if (left.dead || left.next < 0 || left.id != top.left || sym[left.next].id != top.right) continue;
      Symbol& right = sym[left.next];
      left.id = top.merged;
      left.char_end = right.char_end;
      right.dead = true;
      left.next = right.next;
      if (left.next >= 0) sym[left.next].prev = top.pos;
      if (left.prev >= 0) push(left.prev);
      push(top.pos);
    }
    int64_t count = 0;
    for (int32_t i = 0; i >= 0 && i < n; i = sym[i].next)
      if (count == 0 || ends[count - 1] != sym[i].char_end) ends[count++] = sym[i].char_end;
    return count;
  }

 private:
  struct Symbol {
    int32_t id;
    int32_t char_start;
    int32_t char_end;
    int32_t prev = -1;
    int32_t next = -1;
    bool dead = false;
  };
  // A merge's rank, as bpe_merges orders merges: the merged token's score (higher first; NaN after all), the
  // longer left part, the longer right part, the merged token's first place; then the leftmost position.
  struct Candidate {
    bool nan;
    double score;
    int32_t left_chars;
    int32_t right_chars;
    int32_t place;
    int32_t merged;
    int32_t pos;
    int32_t left;
    int32_t right;
  };
  struct Later {  // true when a comes after b (std::priority_queue pops its largest)
    bool operator()(const Candidate& a, const Candidate& b) const {
      if (a.nan != b.nan) return a.nan;
      if (a.score != b.score) return a.score < b.score;
      if (a.left_chars != b.left_chars) return a.left_chars < b.left_chars;
      if (a.right_chars != b.right_chars) return a.right_chars < b.right_chars;
      if (a.place != b.place) return a.place > b.place;
      return a.pos > b.pos;
    }
  };

  // Whether tokens ``l`` and ``r`` merge; if so their candidate (position unset) in ``out``.
  bool pair(int32_t l, int32_t r, std::string& joined, Candidate& out) const {
    joined.assign(tokens_[l]);
    joined.append(tokens_[r]);
    const TokenTable::Ids merged = table_.find_ids(joined);
    if (merged.last < 0) return false;
    const double score = scores_[merged.last];
    out = Candidate{std::isnan(score), std::isnan(score) ? 0.0 : score, chars_[l], chars_[r], merged.first,
                    merged.last, 0, l, r};
    return true;
  }

  // The text of a byte's fallback token ("<0x0A>": what the library looks up, uppercase hex digits).
  static bool is_byte_token(std::string_view s) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    return s.size() == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && hex(s[3]) && hex(s[4]) && s[5] == '>';
  }

  std::string blob_;
  std::vector<std::string_view> tokens_;
  TokenTable table_;
  std::vector<double> scores_;
  std::vector<int32_t> chars_;
  int32_t byte_ids_[256];
};

}  // namespace

// joined: the n_tokens tokens (UTF-8) joined by NUL; scores: one float64 each. A model for pg_spm_split, or NULL
// when the vocabulary is one the run here would not reproduce exactly (SpmModel::exact) or the input is malformed.
PG_C_EXPORT void* pg_spm_new(const char* joined, int64_t n_bytes, const double* scores, int64_t n_tokens) {
  try {
    std::string blob(joined, static_cast<size_t>(n_bytes));
    if (n_tokens <= 0 || std::count(blob.begin(), blob.end(), '\0') != n_tokens - 1) return nullptr;
    auto model = std::make_unique<SpmModel>(std::move(blob), scores, static_cast<size_t>(n_tokens));
    return model->exact() ? model.release() : nullptr;
  } catch (...) {
    return nullptr;
  }
}

// The character offsets where the pieces of ``text`` end (ends: room for n_bytes); their count, or -1 on failure.
PG_C_EXPORT int64_t pg_spm_split(const void* model, const char* text, int64_t n_bytes, int64_t* ends) {
  try {
    return static_cast<const SpmModel*>(model)->split(std::string_view(text, static_cast<size_t>(n_bytes)), ends);
  } catch (...) {
    return -1;
  }
}

PG_C_EXPORT void pg_spm_free(void* model) { delete static_cast<SpmModel*>(model); }
