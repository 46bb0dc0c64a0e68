#include "ganlite/io/npz.h"

#include <torch/torch.h>

#include <cctype>
#include <cstring>

#include "ganlite/io/zip.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::io {

namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

struct Descr {
  torch::ScalarType dtype;
  size_t item_size;
  bool big_endian;
};

Descr parse_descr(const std::string& descr, const std::string& source) {
  if (descr.size() < 3) throw Error(source + ": unsupported dtype '" + descr + "'");
  const char order = descr[0];
  const std::string kind = descr.substr(1);
  static const std::map<std::string, std::pair<torch::ScalarType, size_t>> kinds{
      {"b1", {torch::kBool, 1}},    {"u1", {torch::kUInt8, 1}},   {"i1", {torch::kInt8, 1}},
      {"i2", {torch::kInt16, 2}},   {"i4", {torch::kInt32, 4}},   {"i8", {torch::kInt64, 8}},
      {"f2", {torch::kFloat16, 2}}, {"f4", {torch::kFloat32, 4}}, {"f8", {torch::kFloat64, 8}}};
  const auto it = kinds.find(kind);
  if (it == kinds.end() || (order != '<' && order != '>' && order != '|' && order != '=')) {
    throw Error(source + ": unsupported dtype '" + descr +
                "' (valid: |b1, |u1, |i1, <i2, <i4, <i8, <f2, <f4, <f8 and their big-endian forms)");
  }
  return {it->second.first, it->second.second, order == '>'};
}

// The header is a Python dict literal; numpy writes it with fixed keys, so a small scanner does.
std::string header_value(const std::string& header, const std::string& key, const std::string& source) {
  const std::string quoted = "'" + key + "'";
  auto pos = header.find(quoted);
  if (pos == std::string::npos) throw Error(source + ": .npy header has no '" + key + "': " + header);
  pos = header.find(':', pos + quoted.size());
  if (pos == std::string::npos) throw Error(source + ": malformed .npy header: " + header);
  ++pos;
  while (pos < header.size() && std::isspace(static_cast<unsigned char>(header[pos]))) ++pos;
  if (pos >= header.size()) throw Error(source + ": malformed .npy header: " + header);
  size_t end = pos;
  if (header[pos] == '\'' || header[pos] == '"') {
    end = header.find(header[pos], pos + 1);
    if (end == std::string::npos) throw Error(source + ": malformed .npy header: " + header);
    return header.substr(pos + 1, end - pos - 1);
  }
  if (header[pos] == '(') {
    end = header.find(')', pos);
    if (end == std::string::npos) throw Error(source + ": malformed .npy header: " + header);
    return header.substr(pos, end - pos + 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  auto value = header.substr(pos, end - pos);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.pop_back();
  return value;
}

// numpy arrays have at most 64 dimensions (NPY_MAXDIMS, 32 before numpy 2).
constexpr size_t kMaxDims = 64;

std::vector<int64_t> parse_shape(const std::string& text, const std::string& source) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') throw Error(source + ": malformed .npy shape " + text);
  std::vector<int64_t> shape;
  std::string number;
  for (size_t i = 1; i + 1 <= text.size(); ++i) {
    const char ch = text[i];
    if (std::isdigit(static_cast<unsigned char>(ch))) {
      number += ch;
    } else if (ch == ',' || ch == ')') {
      if (!number.empty()) {
        if (number.size() > 15) throw Error(source + ": absurd .npy shape " + text);
        if (shape.size() == kMaxDims) throw Error(source + ": .npy shape has more than 64 dimensions");
        shape.push_back(std::stoll(number));
        number.clear();
      }
    } else if (ch == 'L' || std::isspace(static_cast<unsigned char>(ch))) {
      continue;  // Python 2 long suffix, spaces
    } else {
      throw Error(source + ": malformed .npy shape " + text);
    }
  }
  return shape;
}

std::string descr_of(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBool: return "|b1";
    case torch::kUInt8: return "|u1";
    case torch::kInt8: return "|i1";
    case torch::kInt16: return "<i2";
    case torch::kInt32: return "<i4";
    case torch::kInt64: return "<i8";
    case torch::kFloat16: return "<f2";
    case torch::kFloat32: return "<f4";
    case torch::kFloat64: return "<f8";
    default: throw Error(std::string("cannot write dtype ") + c10::toString(dtype) + " to .npy");
  }
}

}  // namespace

torch::Tensor parse_npy(const std::string& bytes, const std::string& source) {
  if (bytes.size() < kMagicSize + 4 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    throw Error(source + ": not a .npy file (bad magic)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error(source + ": truncated .npy header");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    throw Error(source + ": unsupported .npy format version " + std::to_string(major) + " (valid: 1, 2, 3)");
  }
  if (header_len > bytes.size() - header_start) throw Error(source + ": truncated .npy header");
  const std::string header = bytes.substr(header_start, header_len);
  const Descr d = parse_descr(header_value(header, "descr", source), source);
  const std::string fortran = header_value(header, "fortran_order", source);
  if (fortran != "True" && fortran != "False") throw Error(source + ": bad fortran_order '" + fortran + "'");
  std::vector<int64_t> shape = parse_shape(header_value(header, "shape", source), source);

  // The product of the non-zero dims is bounded even when a zero dim empties the array, so that
  // LibTorch's stride arithmetic cannot overflow.
  uint64_t numel = 1;
  uint64_t nonzero_product = 1;
  for (auto s : shape) {
    const auto dim = static_cast<uint64_t>(std::max<int64_t>(s, 1));
    if (nonzero_product > (uint64_t{1} << 50) / dim) throw Error(source + ": absurd .npy shape");
    nonzero_product *= dim;
    numel *= static_cast<uint64_t>(s);
  }
  const size_t data_start = header_start + header_len;
  const uint64_t data_size = numel * d.item_size;
  if (bytes.size() - data_start < data_size) {
    throw Error(source + ": truncated .npy data (" + std::to_string(bytes.size() - data_start) + " bytes, expected " +
                std::to_string(data_size) + ")");
  }
  const bool fortran_order = fortran == "True";
  std::vector<int64_t> storage_shape = shape;
  if (fortran_order) std::reverse(storage_shape.begin(), storage_shape.end());
  torch::Tensor t = torch::empty(storage_shape, torch::TensorOptions().dtype(d.dtype));
  if (data_size > 0) std::memcpy(t.data_ptr(), bytes.data() + data_start, data_size);
  if (d.big_endian && d.item_size > 1) {
    auto* p = static_cast<unsigned char*>(t.data_ptr());
    for (uint64_t i = 0; i < numel; ++i) std::reverse(p + i * d.item_size, p + (i + 1) * d.item_size);
  }
  if (fortran_order && shape.size() > 1) {
    std::vector<int64_t> dims(shape.size());
    for (size_t i = 0; i < dims.size(); ++i) dims[i] = static_cast<int64_t>(dims.size() - 1 - i);
    t = t.permute(dims).contiguous();
  }
  return t;
}

std::string serialize_npy(const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  std::string shape = "(";
  for (int64_t i = 0; i < t.dim(); ++i) shape += std::to_string(t.size(i)) + (t.dim() == 1 ? "," : (i + 1 < t.dim() ? ", " : ""));
  shape += ")";
  std::string header = "{'descr': '" + descr_of(t.scalar_type()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // numpy pads with spaces so the data starts on a 64-byte boundary, newline last.
  size_t prefix = kMagicSize + 2 + 2;
  if (header.size() + 1 + prefix > 0xFFFF) prefix = kMagicSize + 2 + 4;
  const size_t total = ((prefix + header.size() + 1 + 63) / 64) * 64;
  header.append(total - prefix - header.size() - 1, ' ');
  header += '\n';
  std::string out(kMagic, kMagicSize);
  out += static_cast<char>(prefix == kMagicSize + 4 ? 1 : 2);
  out += '\0';
  const size_t len = header.size();
  out += static_cast<char>(len & 0xFF);
  out += static_cast<char>((len >> 8) & 0xFF);
  if (prefix != kMagicSize + 4) {
    out += static_cast<char>((len >> 16) & 0xFF);
    out += static_cast<char>((len >> 24) & 0xFF);
  }
  out += header;
  if (t.numel() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

torch::Tensor load_npy(const std::filesystem::path& path) { return parse_npy(read_file(path), path.string()); }

void save_npy(const std::filesystem::path& path, const torch::Tensor& tensor) {
  write_file_atomic(path, serialize_npy(tensor));
}

std::map<std::string, torch::Tensor> load_npz(const std::filesystem::path& path) {
  const ZipReader zip(path);
  std::map<std::string, torch::Tensor> arrays;
  for (const auto& entry : zip.entries()) {
    std::string name = entry.name;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    arrays[name] = parse_npy(zip.read(entry), path.string() + ": entry '" + entry.name + "'");
  }
  return arrays;
}

void save_npz(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& arrays) {
  ZipWriter zip;
  for (const auto& [name, tensor] : arrays) zip.add(name + ".npy", serialize_npy(tensor));
  write_file_atomic(path, zip.finish());
}

}  // namespace ganlite::io
