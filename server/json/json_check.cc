#include "server/json/json_check.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"
#include "rapidjson/memorystream.h"
#include "rapidjson/reader.h"

namespace herald::json {
namespace {

// The nesting depth of a document being read, refusing past a limit: what DepthHandler and
// DepthLimited both count. For one parse, on one thread.
class Depth {
 public:
  explicit Depth(size_t max) : max_(max) {}
  // Opens one more level; false (and too_deep() from then on) past the limit.
  bool Enter() {
    if (++level_ > max_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  // Closes the innermost level and gives the depth left.
  size_t Leave() { return --level_; }
  size_t level() const { return level_; }
  bool too_deep() const { return too_deep_; }

 private:
  const size_t max_;
  size_t level_ = 0;
  bool too_deep_ = false;
};

// RapidJSON SAX handler: counts depth (refusing past the limit) and notes the top level. In
// iterative mode RapidJSON calls StartObject/StartArray and EndObject/EndArray with the stream
// at the bracket, and a scalar's handler right after the scalar, which is what the spans use.
class DepthHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DepthHandler> {
 public:
  DepthHandler(size_t max_depth, JsonTopLevel* top, const rapidjson::MemoryStream* stream,
               bool unique_keys)
      : depth_(max_depth), top_(top), stream_(stream), unique_keys_(unique_keys) {}

  bool too_deep() const { return depth_.too_deep(); }
  // The key an object gave twice (unique_keys), when that stopped the parse.
  const std::optional<std::string>& repeated() const { return repeated_; }

  bool StartObject() {
    if (unique_keys_) {
      if (open_objects_ == objects_.size()) objects_.emplace_back();
      objects_[open_objects_].Clear();
      ++open_objects_;
    }
    return Enter();
  }
  bool EndObject(rapidjson::SizeType) {
    if (unique_keys_) --open_objects_;
    return Leave();
  }
  bool StartArray() { return Enter(); }
  bool EndArray(rapidjson::SizeType) { return Leave(); }

  bool Key(const char* str, rapidjson::SizeType length, bool) {
    // Keys come only directly inside an object: the innermost open one.
    if (unique_keys_ && !objects_[open_objects_ - 1].Insert(absl::string_view(str, length))) {
      repeated_ = std::string(str, length);
      return false;
    }
    if (depth_.level() == 1 && top_ != nullptr) {
      top_->keys.emplace_back(str, length);
      // The value starts after this point, past whitespace and the colon (see CheckJson).
      top_->value_spans.emplace_back(stream_->Tell(), 0);
      top_->data.emplace_back();
      in_id_ = top_->keys.back() == "id";
    } else if (depth_.level() == 2 && top_ != nullptr && !top_->data.empty() &&
               absl::string_view(str, length) == "data") {
      JsonTopLevel::Data& data = top_->data.back();
      data.span = {stream_->Tell(), 0};
      ++data.count;
      in_data_ = true;
    }
    return true;
  }
  bool Uint(unsigned value) {
    if (AtTopLevelId()) top_->id = value;
    return Scalar();
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    uint32_t value = 0;
    if (AtTopLevelId() && absl::SimpleAtoi(absl::string_view(str, length), &value)) {
      top_->id = value;
    }
    return Scalar();
  }
  // Every other scalar: nothing to note but where it ends.
  bool Default() {
    in_id_ = false;
    return Scalar();
  }

 private:
  bool AtTopLevelId() {
    const bool at = depth_.level() == 1 && in_id_ && top_ != nullptr;
    in_id_ = false;
    return at;
  }
  // A scalar member of the top-level object (or a scalar "data" one level down) ends here.
  bool Scalar() {
    if (depth_.level() == 1 && top_ != nullptr && !top_->value_spans.empty()) {
      top_->value_spans.back().second = stream_->Tell();
    }
    if (depth_.level() == 2 && in_data_) {
      top_->data.back().span.second = stream_->Tell();
      in_data_ = false;
    }
    return true;
  }
  bool Enter() {
    in_id_ = false;
    return depth_.Enter();
  }
  bool Leave() {
    // An object or array member of the top-level object ends after this bracket.
    if (depth_.Leave() == 1 && top_ != nullptr && !top_->value_spans.empty()) {
      top_->value_spans.back().second = stream_->Tell() + 1;
    }
    if (depth_.level() == 2 && in_data_) {
      top_->data.back().span.second = stream_->Tell() + 1;
      in_data_ = false;
    }
    return true;
  }

  // The keys of one open object: a short list, then a set (so a 64 KB object of one-letter keys
  // costs linear time too).
  class KeySet {
   public:
    void Clear() {
      few_.clear();
      many_.clear();
    }
    // False when `key` is already in.
    bool Insert(absl::string_view key) {
      if (!many_.empty()) return many_.emplace(key).second;
      for (const std::string& k : few_) {
        if (k == key) return false;
      }
      few_.emplace_back(key);
      if (few_.size() > kFew) {
        many_.insert(few_.begin(), few_.end());
        few_.clear();
      }
      return true;
    }

   private:
    static constexpr size_t kFew = 16;
    std::vector<std::string> few_;
    absl::flat_hash_set<std::string> many_;
  };

  Depth depth_;
  JsonTopLevel* const top_;
  const rapidjson::MemoryStream* const stream_;
  bool in_id_ = false;
  bool in_data_ = false;  // inside the value of a "data" member one level down
  const bool unique_keys_;
  std::vector<KeySet> objects_;  // [0, open_objects_): the open objects, outermost first
  size_t open_objects_ = 0;
  std::optional<std::string> repeated_;
};

// Forwards a reader's events to `inner` (a RapidJSON DOM under construction), counting depth as
// DepthHandler does (Depth) and refusing past the limit. Lives for one parse, on one thread.
template <typename Inner>
class DepthLimited {
 public:
  DepthLimited(Inner* inner, size_t max_depth) : inner_(inner), depth_(max_depth) {}
  bool too_deep() const { return depth_.too_deep(); }

  bool Null() { return inner_->Null(); }
  bool Bool(bool b) { return inner_->Bool(b); }
  bool Int(int i) { return inner_->Int(i); }
  bool Uint(unsigned u) { return inner_->Uint(u); }
  bool Int64(int64_t i) { return inner_->Int64(i); }
  bool Uint64(uint64_t u) { return inner_->Uint64(u); }
  bool Double(double d) { return inner_->Double(d); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool copy) {
    return inner_->RawNumber(str, length, copy);
  }
  bool String(const char* str, rapidjson::SizeType length, bool copy) {
    return inner_->String(str, length, copy);
  }
  bool Key(const char* str, rapidjson::SizeType length, bool copy) {
    return inner_->Key(str, length, copy);
  }
  bool StartObject() { return depth_.Enter() && inner_->StartObject(); }
  bool EndObject(rapidjson::SizeType members) {
    depth_.Leave();
    return inner_->EndObject(members);
  }
  bool StartArray() { return depth_.Enter() && inner_->StartArray(); }
  bool EndArray(rapidjson::SizeType elements) {
    depth_.Leave();
    return inner_->EndArray(elements);
  }

 private:
  Inner* const inner_;
  Depth depth_;
};

// A reader whose stack takes its memory from `crt` (stateless), not from a CrtAllocator of its
// own that RapidJSON would allocate for every parse.
struct CheckReader {
  rapidjson::CrtAllocator crt;
  rapidjson::Reader reader{&crt};
};

// This thread's CheckReader, for ParseJson: a parse clears the stack but keeps its capacity, so
// the small documents ParseJson reads (a token's claims, and its header the first time) allocate
// nothing for it. Its stack grows to the longest string read and stays; CheckJson, which reads
// whole message bodies, makes its own reader. Never used by two parses at once: the Document a
// parse fills does not parse.
rapidjson::Reader& ThreadReader() {
  thread_local CheckReader check;
  return check.reader;
}

// Iterative: no recursion whatever the input; validates UTF-8; one value, then only whitespace.
constexpr unsigned kReaderFlags =
    rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// RapidJSON's MemoryStream reads a NUL byte as the end of the input (`{}` NUL `garbage` would
// pass, and the garbage would reach whoever takes the text as checked); JSON has no place for
// one, in a string or out of it.
absl::Status RefuseNul(absl::string_view json) {
  if (const size_t nul = json.find('\0'); nul != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("a NUL byte (not valid anywhere in JSON) at byte ", nul));
  }
  return absl::OkStatus();
}

// What a pass that stopped (too deep, or a syntax or encoding error) says.
absl::Status Outcome(const rapidjson::ParseResult& result, bool too_deep, size_t max_depth) {
  if (too_deep) {
    return absl::InvalidArgumentError(
        absl::StrCat("nested deeper than ", max_depth, " levels at byte ", result.Offset()));
  }
  if (result.IsError()) {
    return absl::InvalidArgumentError(
        absl::StrCat(rapidjson::GetParseError_En(result.Code()), " at byte ", result.Offset()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckJson(absl::string_view json, size_t max_depth, JsonTopLevel* top,
                       bool unique_keys) {
  if (top != nullptr) *top = JsonTopLevel();
  if (absl::Status st = RefuseNul(json); !st.ok()) return st;
  rapidjson::MemoryStream stream(json.data(), json.size());
  DepthHandler handler(max_depth, top, &stream, unique_keys);
  CheckReader check;
  rapidjson::ParseResult result = check.reader.Parse<kReaderFlags>(stream, handler);
  if (!handler.too_deep() && handler.repeated().has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Repeated map key: '", *handler.repeated(), "' is already set."));
  }
  if (absl::Status st = Outcome(result, handler.too_deep(), max_depth); !st.ok()) return st;
  if (top != nullptr) {
    // A span starts where its key ended: step over whitespace and the colon.
    auto skip = [&](std::pair<size_t, size_t>& span) {
      auto& [begin, end] = span;
      while (begin < end && (json[begin] == ' ' || json[begin] == '\t' || json[begin] == '\n' ||
                             json[begin] == '\r' || json[begin] == ':')) {
        ++begin;
      }
    };
    for (auto& span : top->value_spans) skip(span);
    for (auto& data : top->data) skip(data.span);
  }
  return absl::OkStatus();
}

absl::Status ParseJson(absl::string_view json, size_t max_depth, rapidjson::Document* out) {
  if (absl::Status st = RefuseNul(json); !st.ok()) return st;
  rapidjson::MemoryStream stream(json.data(), json.size());
  rapidjson::ParseResult result;
  bool too_deep = false;
  auto generate = [&](rapidjson::Document& document) {
    DepthLimited<rapidjson::Document> limited(&document, max_depth);
    result = ThreadReader().Parse<kReaderFlags>(stream, limited);
    too_deep = limited.too_deep();
    return !result.IsError();
  };
  out->Populate(generate);
  return Outcome(result, too_deep, max_depth);
}

std::string ValidUtf8(absl::string_view text) {
  rapidjson::MemoryStream in(text.data(), text.size());
  struct Discard {
    void Put(char) {}
  } out;
  while (in.Tell() < text.size()) {
    if (!rapidjson::UTF8<>::Validate(in, out)) return absl::CHexEscape(text);
  }
  return std::string(text);
}

}  // namespace herald::json
