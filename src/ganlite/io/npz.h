// numpy .npy (format versions 1, 2, 3) and .npz (a zip of .npy files, STORED or DEFLATE, as
// np.savez / np.savez_compressed write them) <-> CPU tensors.
//
// Supported dtypes: bool (|b1), uint8 (|u1), int8 (|i1), int16, int32, int64, float16, float32,
// float64, little- or big-endian; C or Fortran order (Fortran arrays come back C-contiguous).
// Unsigned 16/32/64-bit arrays have no LibTorch dtype and are rejected with an Error.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>

namespace ganlite::io {

// Parses the bytes of one .npy file; `source` names it in errors.
torch::Tensor parse_npy(const std::string& bytes, const std::string& source);
// Serialises a tensor (any device, any layout) as .npy format 1.0 (2.0 if the header needs it).
std::string serialize_npy(const torch::Tensor& tensor);

torch::Tensor load_npy(const std::filesystem::path& path);
void save_npy(const std::filesystem::path& path, const torch::Tensor& tensor);

// Arrays of an .npz archive by name (the entry name without ".npy").
std::map<std::string, torch::Tensor> load_npz(const std::filesystem::path& path);
// Writes an uncompressed .npz (like np.savez) atomically.
void save_npz(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& arrays);

}  // namespace ganlite::io
