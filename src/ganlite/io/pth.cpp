#include "ganlite/io/pth.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <cstring>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "ganlite/io/zip.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::io {

namespace {

// ---- A Python value as far as state dicts need one ----
struct PyObj;
using PyRef = std::shared_ptr<PyObj>;

// Limits on what a pickle may build. Python's pickler recurses once per nesting level, so
// torch.save cannot write deeper than its recursion limit (1000 by default); state dicts nest
// 2-4 deep. A state dict pushes ~25 values per tensor; 2^22 values (~700 MB here) are ~170k
// tensors, far above real models (hundreds to a few thousand).
constexpr int kMaxPickleDepth = 1000;
constexpr size_t kMaxPickleValues = size_t{1} << 22;

struct PyObj {
  enum class Kind { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Tensor, Storage, Opaque };
  PyObj() = default;
  PyObj(const PyObj&) = delete;
  PyObj& operator=(const PyObj&) = delete;
  ~PyObj();

  Kind kind = Kind::None;
  int depth = 0;  // containers: 1 + the deepest item when it was added (a lower bound after mutation)
  int64_t i = 0;
  double f = 0;
  std::string s;  // Str, Bytes, Global ("module.name"), Opaque (what built it)
  std::vector<PyRef> items;
  std::vector<std::pair<PyRef, PyRef>> dict;  // insertion order, like Python
  std::unordered_map<std::string, size_t> dict_index;
  torch::Tensor tensor;  // Tensor, Storage (1-d, the whole storage)
};

// Without this, destroying a chain of a million nested tuples would recurse a million deep
// (each shared_ptr release destroying the next): children whose last owner is this object are
// emptied into a work list first, so destruction is iterative whatever the nesting.
PyObj::~PyObj() {
  std::vector<PyRef> pending;
  auto take_children = [&pending](PyObj& o) {
    for (auto& item : o.items) pending.push_back(std::move(item));
    for (auto& [key, value] : o.dict) {
      pending.push_back(std::move(key));
      pending.push_back(std::move(value));
    }
    o.items.clear();
    o.dict.clear();
  };
  take_children(*this);
  while (!pending.empty()) {
    PyRef next = std::move(pending.back());
    pending.pop_back();
    if (next && next.use_count() == 1) take_children(*next);
  }  // `next` dies here without children
}

PyRef make(PyObj::Kind kind) {
  auto p = std::make_shared<PyObj>();
  p->kind = kind;
  return p;
}
PyRef make_int(int64_t v) {
  auto p = make(PyObj::Kind::Int);
  p->i = v;
  return p;
}
PyRef make_str(PyObj::Kind kind, std::string s) {
  auto p = make(kind);
  p->s = std::move(s);
  return p;
}

// Dict keys as text: strings as they are, ints in decimal (e.g. optimiser state ids).
bool key_text(const PyRef& key, std::string& out) {
  if (key->kind == PyObj::Kind::Str) {
    out = key->s;
    return true;
  }
  if (key->kind == PyObj::Kind::Int) {
    out = std::to_string(key->i);
    return true;
  }
  return false;
}

void dict_set(PyObj& d, PyRef key, PyRef value) {
  std::string text;
  if (key_text(key, text)) {
    const auto it = d.dict_index.find(text);
    if (it != d.dict_index.end()) {
      d.dict[it->second].second = std::move(value);
      return;
    }
    d.dict_index.emplace(text, d.dict.size());
  }
  d.dict.emplace_back(std::move(key), std::move(value));
}

torch::ScalarType storage_dtype(const std::string& global, const std::string& source) {
  static const std::unordered_map<std::string, torch::ScalarType> types{
      {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool},
      {"torch.UntypedStorage", torch::kUInt8}, {"torch.ComplexFloatStorage", torch::kComplexFloat},
      {"torch.ComplexDoubleStorage", torch::kComplexDouble}};
  const auto it = types.find(global);
  if (it == types.end()) throw Error(source + ": unsupported storage type '" + global + "'");
  return it->second;
}

class Unpickler {
 public:
  Unpickler(const std::string& data, const ZipReader& zip, std::string prefix, std::string source)
      : data_(data), zip_(zip), prefix_(std::move(prefix)), source_(std::move(source)) {}

  PyRef run() {
    while (true) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80: byte(); break;   // PROTO
        case 0x95: bytes(8); break;  // FRAME
        case '.': return pop();      // STOP
        case '(': marks_.push_back(stack_.size()); break;
        case '}': push(make(PyObj::Kind::Dict)); break;
        case ']': push(make(PyObj::Kind::List)); break;
        case ')': push(make(PyObj::Kind::Tuple)); break;
        case 't': {
          auto t = make(PyObj::Kind::Tuple);
          for (auto& item : pop_to_mark()) adopt(*t, std::move(item));
          push(t);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84u;
          need_stack(n);
          auto t = make(PyObj::Kind::Tuple);
          for (auto it = stack_.end() - static_cast<std::ptrdiff_t>(n); it != stack_.end(); ++it) adopt(*t, *it);
          stack_.resize(stack_.size() - n);
          push(t);
          break;
        }
        case 'q': memo_[static_cast<unsigned char>(byte())] = top(); break;
        case 'r': memo_[uint_le(4)] = top(); break;
        case 'p': memo_[static_cast<uint64_t>(parse_int(line()))] = top(); break;
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': push(memo_get(static_cast<unsigned char>(byte()))); break;
        case 'j': push(memo_get(uint_le(4))); break;
        case 'g': push(memo_get(static_cast<uint64_t>(parse_int(line())))); break;
        case 'c': {
          std::string module = line();
          std::string name = line();
          push(make_str(PyObj::Kind::Global, module + "." + name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = pop();
          auto module = pop();
          if (module->kind != PyObj::Kind::Str || name->kind != PyObj::Kind::Str) fail("STACK_GLOBAL without strings");
          push(make_str(PyObj::Kind::Global, module->s + "." + name->s));
          break;
        }
        case 'R': {
          auto args = pop();
          auto callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          pop();
          auto cls = pop();
          push(make_str(PyObj::Kind::Opaque, cls->s));
          break;
        }
        case 0x92: {  // NEWOBJ_EX
          pop();
          pop();
          auto cls = pop();
          push(make_str(PyObj::Kind::Opaque, cls->s));
          break;
        }
        case 'b': pop(); need_stack(1); break;  // BUILD: object state (e.g. OrderedDict._metadata) is not needed
        case 'Q': push(persistent_load(pop())); break;
        case 'P': fail("text persistent ids are not used by torch.save");
        case 's': {
          auto value = pop();
          auto key = pop();
          auto target = dict_target();
          if (target->kind == PyObj::Kind::Dict) {
            adopt_depth(*target, *key);
            adopt_depth(*target, *value);
            dict_set(*target, key, value);
          }
          break;
        }
        case 'u': {
          auto items = pop_to_mark();
          if (items.size() % 2) fail("SETITEMS with an odd number of items");
          auto target = dict_target();
          if (target->kind == PyObj::Kind::Dict) {
            for (size_t k = 0; k < items.size(); k += 2) {
              adopt_depth(*target, *items[k]);
              adopt_depth(*target, *items[k + 1]);
              dict_set(*target, items[k], items[k + 1]);
            }
          }
          break;
        }
        case 'a': {
          auto value = pop();
          need_stack(1);
          if (top()->kind == PyObj::Kind::List) adopt(*top(), std::move(value));
          break;
        }
        case 'e': {
          auto items = pop_to_mark();
          need_stack(1);
          if (top()->kind == PyObj::Kind::List) {
            for (auto& item : items) adopt(*top(), std::move(item));
          }
          break;
        }
        case 0x8f: push(make(PyObj::Kind::List)); break;  // EMPTY_SET: a list is enough
        case 0x90: {                                      // ADDITEMS
          auto items = pop_to_mark();
          need_stack(1);
          if (top()->kind == PyObj::Kind::List) {
            for (auto& item : items) adopt(*top(), std::move(item));
          }
          break;
        }
        case 0x91: {  // FROZENSET
          auto t = make(PyObj::Kind::List);
          for (auto& item : pop_to_mark()) adopt(*t, std::move(item));
          push(t);
          break;
        }
        case 'J': push(make_int(static_cast<int32_t>(uint_le(4)))); break;
        case 'K': push(make_int(static_cast<unsigned char>(byte()))); break;
        case 'M': push(make_int(static_cast<int64_t>(uint_le(2)))); break;
        case 0x8a: push(make_int(long_le(static_cast<unsigned char>(byte())))); break;
        case 0x8b: push(make_int(long_le(uint_le(4)))); break;
        case 'I': {
          const std::string text = line();
          if (text == "00" || text == "01") {
            auto b = make(PyObj::Kind::Bool);
            b->i = text == "01";
            push(b);
          } else {
            push(make_int(parse_int(text)));
          }
          break;
        }
        case 'L': {
          std::string text = line();
          if (!text.empty() && text.back() == 'L') text.pop_back();
          push(make_int(parse_int(text)));
          break;
        }
        case 'N': push(make(PyObj::Kind::None)); break;
        case 0x88: case 0x89: {
          auto b = make(PyObj::Kind::Bool);
          b->i = op == 0x88;
          push(b);
          break;
        }
        case 'G': {
          const std::string raw = bytes(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<unsigned char>(raw[static_cast<size_t>(k)]);
          auto v = make(PyObj::Kind::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'F': {
          auto v = make(PyObj::Kind::Float);
          v->f = std::strtod(line().c_str(), nullptr);
          push(v);
          break;
        }
        case 'X': push(make_str(PyObj::Kind::Str, bytes(uint_le(4)))); break;
        case 0x8c: push(make_str(PyObj::Kind::Str, bytes(static_cast<unsigned char>(byte())))); break;
        case 0x8d: push(make_str(PyObj::Kind::Str, bytes(uint_le(8)))); break;
        case 'V': push(make_str(PyObj::Kind::Str, line())); break;
        case 'T': push(make_str(PyObj::Kind::Str, bytes(uint_le(4)))); break;
        case 'U': push(make_str(PyObj::Kind::Str, bytes(static_cast<unsigned char>(byte())))); break;
        case 'S': {
          std::string text = line();
          if (text.size() >= 2 && (text.front() == '\'' || text.front() == '"')) text = text.substr(1, text.size() - 2);
          push(make_str(PyObj::Kind::Str, text));
          break;
        }
        case 'B': push(make_str(PyObj::Kind::Bytes, bytes(uint_le(4)))); break;
        case 'C': push(make_str(PyObj::Kind::Bytes, bytes(static_cast<unsigned char>(byte())))); break;
        case 0x8e: push(make_str(PyObj::Kind::Bytes, bytes(uint_le(8)))); break;
        case '0': pop(); break;
        case '1': pop_to_mark(); break;
        case '2': push(top()); break;
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("unsupported pickle opcode ") + hex);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(source_ + ": cannot read the pickled data (" + why + " at byte " + std::to_string(pos_) + ")");
  }
  char byte() {
    if (pos_ >= data_.size()) fail("unexpected end of data");
    return data_[pos_++];
  }
  std::string bytes(uint64_t n) {
    if (n > data_.size() - pos_) fail("unexpected end of data");
    std::string out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t uint_le(int n) {
    const std::string raw = bytes(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(raw[static_cast<size_t>(k)]);
    return v;
  }
  int64_t long_le(uint64_t n) {
    if (n > 8) fail("integer wider than 64 bits");
    if (n == 0) return 0;
    uint64_t v = uint_le(static_cast<int>(n));
    if (n < 8 && (v >> (8 * n - 1)) & 1u) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string line() {
    const auto end = data_.find('\n', pos_);
    if (end == std::string::npos) fail("unterminated line");
    std::string out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  int64_t parse_int(const std::string& text) {
    try {
      size_t used = 0;
      const int64_t v = std::stoll(text, &used);
      if (used != text.size()) fail("bad integer '" + text + "'");
      return v;
    } catch (const std::logic_error&) {
      fail("bad integer '" + text + "'");
    }
  }
  void push(PyRef v) {
    // Every opcode that makes a value pushes it once: this bounds the values built.
    if (++values_ > kMaxPickleValues) {
      fail("more than " + std::to_string(kMaxPickleValues) + " values, far more than a state dict holds");
    }
    stack_.push_back(std::move(v));
  }
  // Records that `item` now sits inside `container`, refusing nesting deeper than torch.save
  // can write. (Destruction is iterative anyway, see ~PyObj.)
  void adopt_depth(PyObj& container, const PyObj& item) {
    if (item.depth + 1 > container.depth) container.depth = item.depth + 1;
    if (container.depth > kMaxPickleDepth) {
      fail("values nested deeper than " + std::to_string(kMaxPickleDepth) + " levels");
    }
  }
  void adopt(PyObj& container, PyRef item) {
    adopt_depth(container, *item);
    container.items.push_back(std::move(item));
  }
  void need_stack(size_t n) const {
    const size_t floor = marks_.empty() ? 0 : marks_.back();
    if (stack_.size() < floor + n) fail("stack underflow");
  }
  PyRef pop() {
    need_stack(1);
    PyRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  PyRef& top() {
    need_stack(1);
    return stack_.back();
  }
  PyRef dict_target() {
    need_stack(1);
    return stack_.back();
  }
  std::vector<PyRef> pop_to_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) fail("corrupt MARK");
    std::vector<PyRef> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  PyRef memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " missing");
    return it->second;
  }

  std::vector<int64_t> int_tuple(const PyRef& t, const char* what) {
    if (t->kind != PyObj::Kind::Tuple && t->kind != PyObj::Kind::List) fail(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& item : t->items) {
      if (item->kind != PyObj::Kind::Int) fail(std::string(what) + " holds a non-integer");
      out.push_back(item->i);
    }
    return out;
  }

  PyRef reduce(const PyRef& callable, const PyRef& args) {
    if (callable->kind != PyObj::Kind::Global) return make_str(PyObj::Kind::Opaque, "call");
    const std::string& name = callable->s;
    const bool tuple_args = args->kind == PyObj::Kind::Tuple;
    if (name == "collections.OrderedDict") {
      auto d = make(PyObj::Kind::Dict);
      if (tuple_args && !args->items.empty() && args->items[0]->kind == PyObj::Kind::List) {
        for (const auto& pair : args->items[0]->items) {
          if (pair->kind == PyObj::Kind::Tuple && pair->items.size() == 2) {
            adopt_depth(*d, *pair);
            dict_set(*d, pair->items[0], pair->items[1]);
          }
        }
      }
      return d;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (!tuple_args || args->items.size() < 4) fail(name + " with too few arguments");
      return rebuild_tensor(args->items[0], args->items[1], args->items[2], args->items[3]);
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (!tuple_args || args->items.empty() || args->items[0]->kind != PyObj::Kind::Tensor) fail(name + " without a tensor");
      return args->items[0];
    }
    // LibTorch's pickler (torch::pickle_save) wraps values in restore_type_tag(value, type) and
    // lists in build_intlist(list) etc.: the value is the first argument.
    if (name.rfind("torch.jit._pickle.", 0) == 0 && tuple_args && !args->items.empty()) return args->items[0];
    return make_str(PyObj::Kind::Opaque, name);
  }

  PyRef rebuild_tensor(const PyRef& storage, const PyRef& offset_obj, const PyRef& size_obj, const PyRef& stride_obj) {
    if (storage->kind != PyObj::Kind::Storage) fail("tensor without a storage");
    if (offset_obj->kind != PyObj::Kind::Int) fail("tensor storage offset is not an integer");
    const auto size = int_tuple(size_obj, "tensor size");
    const auto stride = int_tuple(stride_obj, "tensor stride");
    if (size.size() != stride.size()) fail("tensor size and stride differ in length");
    const int64_t offset = offset_obj->i;
    const int64_t available = storage->tensor.numel();
    // Bounds check: the view must lie inside the storage, or as_strided would read past it.
    bool empty = false;
    int64_t last = offset;
    for (size_t d = 0; d < size.size(); ++d) {
      if (size[d] < 0 || stride[d] < 0) fail("negative tensor size or stride");
      if (size[d] == 0) empty = true;
      else if (size[d] - 1 > 0 && stride[d] > (int64_t{1} << 50) / (size[d] - 1)) fail("absurd tensor stride");
      else last += (size[d] - 1) * stride[d];
    }
    if (offset < 0 || (!empty && last >= available)) {
      fail("tensor view [offset " + std::to_string(offset) + ", last " + std::to_string(last) + "] outside its " +
           std::to_string(available) + "-element storage");
    }
    // A state dict's tensors own their elements; a view with more elements than its storage
    // (stride 0) would turn a few stored bytes into an arbitrarily large tensor once copied.
    int64_t numel = 1;
    for (int64_t d : size) {
      if (d != 0 && numel > available / d) {
        fail("tensor of size " + c10::str(c10::IntArrayRef(size)) + " has more elements than its " +
             std::to_string(available) + "-element storage");
      }
      numel *= d;
    }
    auto t = make(PyObj::Kind::Tensor);
    t->tensor = storage->tensor.as_strided(size, stride, offset);
    return t;
  }

  PyRef persistent_load(const PyRef& pid) {
    if (pid->kind != PyObj::Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != PyObj::Kind::Str ||
        pid->items[0]->s != "storage") {
      fail("unknown persistent id");
    }
    const auto& type = pid->items[1];
    const auto& key = pid->items[2];
    if (type->kind != PyObj::Kind::Global || key->kind != PyObj::Kind::Str) fail("malformed storage id");
    const auto cached = storages_.find(key->s);
    if (cached != storages_.end()) return cached->second;
    const torch::ScalarType dtype = storage_dtype(type->s, source_);
    const std::string raw = zip_.read(prefix_ + "data/" + key->s);
    const auto item = static_cast<int64_t>(c10::elementSize(dtype));
    auto s = make(PyObj::Kind::Storage);
    s->tensor = torch::empty({static_cast<int64_t>(raw.size()) / item}, torch::TensorOptions().dtype(dtype));
    if (!raw.empty()) std::memcpy(s->tensor.data_ptr(), raw.data(), static_cast<size_t>(s->tensor.numel() * item));
    storages_[key->s] = s;
    return s;
  }

  const std::string& data_;
  const ZipReader& zip_;
  std::string prefix_;
  std::string source_;
  size_t pos_ = 0;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyRef> memo_;
  std::unordered_map<std::string, PyRef> storages_;
  size_t values_ = 0;
};

void flatten(const PyRef& value, const std::string& prefix, NamedTensors& out, std::unordered_set<const PyObj*>& seen,
             int depth) {
  if (depth > 64 || !seen.insert(value.get()).second) return;  // cycles through the memo
  for (const auto& [key, item] : value->dict) {
    std::string name;
    if (!key_text(key, name)) continue;
    if (item->kind == PyObj::Kind::Tensor) {
      out.emplace_back(prefix + name, item->tensor);
    } else if (item->kind == PyObj::Kind::Dict) {
      flatten(item, prefix + name + ".", out, seen, depth + 1);
    }
  }
  seen.erase(value.get());
}

}  // namespace

NamedTensors parse_pth_state_dict(const std::string& bytes, const std::string& source) {
  if (!looks_like_zip(bytes)) {
    if (!bytes.empty() && static_cast<unsigned char>(bytes[0]) == 0x80) {
      throw Error(source + ": legacy (non-zip) PyTorch file; re-save it in Python with "
                           "`torch.save(torch.load(f), f, _use_new_zipfile_serialization=True)`");
    }
    throw Error(source + ": not a PyTorch checkpoint (neither a zip archive nor a legacy pickle)");
  }
  const ZipReader zip(bytes, source);
  std::string prefix;
  bool found = false;
  for (const auto& e : zip.entries()) {
    const std::string leaf = "data.pkl";
    if (e.name.size() >= leaf.size() && e.name.compare(e.name.size() - leaf.size(), leaf.size(), leaf) == 0) {
      const std::string p = e.name.substr(0, e.name.size() - leaf.size());
      if (p.empty() || (p.back() == '/' && p.find('/') == p.size() - 1)) {
        prefix = p;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    for (const auto& e : zip.entries()) {
      if (e.name.find("constants.pkl") != std::string::npos) {
        throw Error(source + ": is a TorchScript archive (torch.jit.save), not a state dict saved with torch.save");
      }
    }
    throw Error(source + ": zip archive without data.pkl: not a torch.save file");
  }
  if (zip.contains(prefix + "byteorder") && zip.read(prefix + "byteorder") != "little") {
    throw Error(source + ": big-endian checkpoints are not supported");
  }
  const std::string pickled = zip.read(prefix + "data.pkl");
  Unpickler unpickler(pickled, zip, prefix, source);
  const PyRef root = unpickler.run();
  NamedTensors out;
  if (root->kind == PyObj::Kind::Dict) {
    std::unordered_set<const PyObj*> seen;
    flatten(root, "", out, seen, 0);
  }
  if (out.empty()) throw Error(source + ": holds no dict of tensors (not a state dict)");
  return out;
}

NamedTensors load_pth_state_dict(const std::filesystem::path& path) {
  return parse_pth_state_dict(read_file(path), path.string());
}

void save_pth_state_dict(const std::filesystem::path& path, const NamedTensors& tensors) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& [name, tensor] : tensors) {
    if (dict.contains(name)) throw Error("save " + path.string() + ": duplicate tensor name '" + name + "'");
    dict.insert(name, tensor.detach().to(torch::kCPU).contiguous());
  }
  const std::vector<char> bytes = torch::pickle_save(dict);
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace ganlite::io
