// The safetensors format: 8-byte little-endian header length, a JSON header mapping names to
// {dtype, shape, data_offsets} (plus "__metadata__": string map), then raw little-endian data.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::io {

struct SafetensorsContents {
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in file order, CPU, contiguous
};

// Writes atomically (temporary file, fsync, rename). Tensors may live on any device.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Throws Error naming the file on anything malformed (short file, bad JSON, offsets out of
// range or overlapping, unknown dtype), never crashes.
SafetensorsContents load_safetensors(const std::filesystem::path& path);

// One tensor's entry in the header, without its data.
struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;  // "F32", "I64", ...
  std::vector<int64_t> shape;
  int64_t begin = 0;  // data_offsets, relative to the data buffer
  int64_t end = 0;
};
struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsTensorInfo> tensors;  // in file (data) order
};
// Reads and validates only the header (offsets checked against the file size), without loading
// the data: for inspecting models and reading their metadata cheaply.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

std::string serialize_safetensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
SafetensorsContents parse_safetensors(const std::string& bytes, const std::string& name_for_errors);

}  // namespace ganlite::io
