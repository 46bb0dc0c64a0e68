#include "ganlite/io/safetensors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <cerrno>
#include <fstream>
#include <set>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

// safetensors stores every value little-endian. Tensor bytes are copied as they lie in memory,
// which is only correct on a little-endian host; big-endian hosts are not supported.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors IO assumes a little-endian host");

namespace ganlite::io {

namespace {

constexpr const char* kMetadataKey = "__metadata__";

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};

// The dtypes of the format that LibTorch can hold.
const std::vector<DtypeName>& dtype_table() {
  static const std::vector<DtypeName> table{
      {"F64", torch::kDouble}, {"F32", torch::kFloat}, {"F16", torch::kHalf},  {"BF16", torch::kBFloat16},
      {"I64", torch::kLong},   {"I32", torch::kInt},   {"I16", torch::kShort}, {"I8", torch::kChar},
      {"U8", torch::kByte},    {"BOOL", torch::kBool}};
  return table;
}

std::string valid_dtypes_text() {
  std::string s;
  for (const auto& d : dtype_table()) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

const char* dtype_name(torch::ScalarType type, const std::string& tensor_name) {
  for (const auto& d : dtype_table()) {
    if (d.type == type) return d.name;
  }
  throw Error("tensor '" + tensor_name + "' has dtype " + std::string(c10::toString(type)) +
              ", which safetensors cannot store (valid: " + valid_dtypes_text() + ")");
}

// Parses the header, rejecting duplicate keys in any object (nlohmann would keep the last one).
nlohmann::ordered_json parse_header_json(const std::string& text, const std::string& file) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::ordered_json::parse_event_t event, nlohmann::ordered_json& parsed) {
    using E = nlohmann::ordered_json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty() && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(text, callback);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": the safetensors header is not valid JSON: " + e.what());
  }
  if (!duplicate.empty()) throw Error(file + ": duplicate name '" + duplicate + "' in the safetensors header");
  if (!header.is_object()) throw Error(file + ": the safetensors header must be a JSON object");
  return header;
}

// A JSON number that is a non-negative integer fitting int64.
bool as_index(const nlohmann::ordered_json& v, int64_t& out) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return out >= 0;
  }
  return false;
}

struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  int64_t begin = 0;
  int64_t end = 0;
};

Entry parse_entry(const std::string& file, const std::string& name, const nlohmann::ordered_json& info) {
  const std::string where = file + ": tensor '" + name + "'";
  if (!info.is_object()) throw Error(where + ": entry must be an object with dtype, shape and data_offsets");
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(field)) throw Error(where + ": missing field '" + field + "'");
  }
  Entry e;
  e.name = name;
  const auto& dtype = info["dtype"];
  if (!dtype.is_string()) throw Error(where + ": dtype must be a string");
  const auto& dtype_str = dtype.get_ref<const std::string&>();
  auto it = std::find_if(dtype_table().begin(), dtype_table().end(),
                         [&](const DtypeName& d) { return dtype_str == d.name; });
  if (it == dtype_table().end()) {
    throw Error(where + ": unknown or unsupported dtype '" + dtype_str + "' (valid: " + valid_dtypes_text() + ")");
  }
  e.type = it->type;

  const auto& shape = info["shape"];
  if (!shape.is_array()) throw Error(where + ": shape must be an array of non-negative integers");
  // The product of the non-zero dims must fit int64 even when a zero dim makes the tensor empty,
  // so that LibTorch's stride arithmetic cannot overflow.
  int64_t numel = 1;
  int64_t nonzero_product = 1;
  for (const auto& d : shape) {
    int64_t dim = 0;
    if (!as_index(d, dim)) throw Error(where + ": shape must be an array of non-negative integers");
    e.shape.push_back(dim);
    if (__builtin_mul_overflow(nonzero_product, std::max<int64_t>(dim, 1), &nonzero_product)) {
      throw Error(where + ": shape " + shape_text(e.shape) + " is too large");
    }
    numel *= dim;  // cannot overflow: |numel| <= nonzero_product
  }

  const auto& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !as_index(offsets[0], e.begin) || !as_index(offsets[1], e.end)) {
    throw Error(where + ": data_offsets must be [begin, end] with non-negative integers");
  }
  if (e.end < e.begin) {
    throw Error(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] end before they begin");
  }
  const int64_t element = static_cast<int64_t>(c10::elementSize(e.type));
  int64_t expected = 0;
  if (__builtin_mul_overflow(numel, element, &expected) || expected != e.end - e.begin) {
    throw Error(where + ": shape " + shape_text(e.shape) + " of " + dtype_str + " needs " +
                std::to_string(numel) + " x " + std::to_string(element) + " bytes but data_offsets [" +
                std::to_string(e.begin) + ", " + std::to_string(e.end) + "] span " +
                std::to_string(e.end - e.begin));
  }
  return e;
}

}  // namespace

std::string serialize_safetensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header[kMetadataKey] = std::move(meta);
  }
  std::vector<torch::Tensor> cpu;
  cpu.reserve(tensors.size());
  std::set<std::string> seen;
  int64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) throw Error("'" + name + "' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) throw Error("duplicate tensor name '" + name + "'");
    if (!tensor.defined()) throw Error("tensor '" + name + "' is undefined");
    if (tensor.layout() != torch::kStrided) throw Error("tensor '" + name + "' is not dense (sparse tensors cannot be saved)");
    const char* dtype = dtype_name(tensor.scalar_type(), name);
    // Data is written from host memory, contiguous in row-major order.
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    header[name] = {{"dtype", dtype}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    cpu.push_back(std::move(t));
  }
  std::string header_text = header.dump();
  // The spec pads the header with spaces so the data buffer starts 8-byte aligned.
  header_text.append((8 - header_text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + header_text.size() + static_cast<size_t>(offset));
  const uint64_t n = header_text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));  // little-endian u64
  out += header_text;
  for (const auto& t : cpu) {
    if (t.numel() > 0) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return out;
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  try {
    bytes = serialize_safetensors(tensors, metadata);
  } catch (const Error& e) {
    throw Error("saving " + path.string() + ": " + e.what());
  }
  write_file_atomic(path, bytes);
}

namespace {

// The spec's reference implementation refuses headers above 100 MB; so does ganlite.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

uint64_t decode_header_size(const std::string& first8) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(first8[static_cast<size_t>(i)]);
  return n;
}

void check_header_size(uint64_t header_size, uint64_t file_size, const std::string& file) {
  if (file_size < 8) {
    throw Error(file + ": " + std::to_string(file_size) +
                " bytes, too short for a safetensors file (at least the 8-byte header length)");
  }
  const uint64_t available = file_size - 8;
  if (header_size > available) {
    throw Error(file + ": header length " + std::to_string(header_size) + " is beyond the file size (" +
                std::to_string(available) + " bytes after the length field); truncated or not a safetensors file");
  }
  if (header_size > kMaxHeaderSize) {
    throw Error(file + ": header length " + std::to_string(header_size) + " exceeds the 100 MB limit");
  }
}

// Parses and validates the header against a data buffer of `data_size` bytes. Entries come back
// in data order.
void parse_header(const std::string& header_text, int64_t data_size, const std::string& file,
                  std::map<std::string, std::string>& metadata, std::vector<Entry>& entries) {
  const nlohmann::ordered_json header = parse_header_json(header_text, file);
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object()) throw Error(file + ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) throw Error(file + ": __metadata__ value of '" + k + "' must be a string");
        metadata[k] = v.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(file, name, info));
  }

  // The tensors must tile the data buffer exactly: no overlap, no hole, nothing past its end.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  int64_t expected_begin = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.end > data_size) {
      throw Error(file + ": tensor '" + e.name + "' data_offsets [" + std::to_string(e.begin) + ", " +
                  std::to_string(e.end) + "] are out of range (data buffer is " + std::to_string(data_size) +
                  " bytes)");
    }
    if (e.begin < expected_begin) {
      throw Error(file + ": tensor '" + e.name + "' data_offsets [" + std::to_string(e.begin) + ", " +
                  std::to_string(e.end) + "] overlap tensor '" + entries[i - 1].name + "'");
    }
    if (e.begin > expected_begin) {
      throw Error(file + ": hole in the data buffer: bytes [" + std::to_string(expected_begin) + ", " +
                  std::to_string(e.begin) + ") before tensor '" + e.name + "' belong to no tensor");
    }
    expected_begin = e.end;
  }
  if (expected_begin != data_size) {
    throw Error(file + ": data buffer is " + std::to_string(data_size) + " bytes but the tensors cover " +
                std::to_string(expected_begin) + " (trailing bytes)");
  }
}

const char* dtype_code(torch::ScalarType type) {
  for (const auto& d : dtype_table()) {
    if (d.type == type) return d.name;
  }
  return "?";
}

}  // namespace

SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& file) {
  const uint64_t header_size = bytes.size() >= 8 ? decode_header_size(bytes.substr(0, 8)) : 0;
  check_header_size(header_size, bytes.size(), file);
  const size_t data_start = 8 + header_size;
  SafetensorsContents contents;
  std::vector<Entry> entries;
  parse_header(bytes.substr(8, header_size), static_cast<int64_t>(bytes.size() - data_start), file,
               contents.metadata, entries);

  for (const Entry& e : entries) {
    torch::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.type));
    const char* src = bytes.data() + data_start + e.begin;
    const size_t n = static_cast<size_t>(e.end - e.begin);
    if (e.type == torch::kBool) {
      // Any byte but 0 and 1 would be an invalid bool in LibTorch.
      for (size_t i = 0; i < n; ++i) {
        if (static_cast<unsigned char>(src[i]) > 1) {
          throw Error(file + ": tensor '" + e.name + "' has BOOL byte " +
                      std::to_string(static_cast<unsigned char>(src[i])) + " (only 0 and 1 are valid)");
        }
      }
    }
    if (n > 0) std::memcpy(t.data_ptr(), src, n);
    contents.tensors.emplace_back(e.name, std::move(t));
  }
  return contents;
}

SafetensorsContents load_safetensors(const std::filesystem::path& path) {
  return parse_safetensors(read_file(path), path.string());
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(file + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + file + ": " + std::strerror(errno));
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw Error("cannot read " + file + ": " + ec.message());
  std::string first8(8, '\0');
  const uint64_t header_size = in.read(first8.data(), 8) ? decode_header_size(first8) : 0;
  check_header_size(header_size, file_size, file);
  std::string header_text(header_size, '\0');
  if (!in.read(header_text.data(), static_cast<std::streamsize>(header_size))) {
    throw Error("cannot read the header of " + file);
  }
  SafetensorsHeader header;
  std::vector<Entry> entries;
  parse_header(header_text, static_cast<int64_t>(file_size - 8 - header_size), file, header.metadata, entries);
  for (const Entry& e : entries) header.tensors.push_back({e.name, dtype_code(e.type), e.shape, e.begin, e.end});
  return header;
}

}  // namespace ganlite::io
