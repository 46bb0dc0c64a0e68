// Model files: safetensors with the public PyTorch code's key names and the architecture in
// the header's __metadata__, so files move both ways between ganlite and Python.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/nn/generator.h"

namespace ganlite::io {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;
using Metadata = std::map<std::string, std::string>;

// A module's parameters and buffers under their state-dict names, in registration order.
NamedTensors state_dict(const torch::nn::Module& module);
// Copies `tensors` into `module`. Strict: a missing or unexpected key or a shape mismatch
// throws Error naming the key.
void load_state_dict(torch::nn::Module& module, const NamedTensors& tensors, bool strict = true);

// Keys every generator file's metadata holds.
inline constexpr const char* kMetaFormat = "format";        // "ganlite"
inline constexpr const char* kMetaKind = "kind";            // "generator", "discriminator", ...
inline constexpr const char* kMetaArch = "arch_config";     // ArchConfig JSON (generators)

// Saves the generator's state dict and its ArchConfig (plus `extra`) atomically.
void save_generator(const std::filesystem::path& path, nn::GeneratorImpl& generator, const Metadata& extra = {});
// A metadata value that must be a decimal integer in [min, max] (as save_module writes ndf,
// n_layers): Error naming the file and the key otherwise, never a narrowed or partial number.
int64_t metadata_integer(const Metadata& meta, const std::string& key, const std::filesystem::path& path,
                         int64_t min, int64_t max);

// The architecture in a generator file's metadata, checked before anything is built: a field
// out of bounds (nn/arch_config.h) or a network needing far more convolution weights than the
// file holds tensor elements (over twice as many plus 1M) throws Error naming the file and the
// field.
nn::ArchConfig read_generator_arch(const std::filesystem::path& path);
// Rebuilds the generator from the file's metadata (read_generator_arch) and loads its weights
// onto `device`.
nn::Generator load_generator(const std::filesystem::path& path, const torch::Device& device = torch::kCPU);
// Saves any module (discriminators, adaptors) with metadata describing it.
void save_module(const std::filesystem::path& path, const torch::nn::Module& module, const Metadata& metadata);
// Loads weights into an already built module; returns the file's metadata.
Metadata load_module(const std::filesystem::path& path, torch::nn::Module& module,
                     const torch::Device& device = torch::kCPU);

}  // namespace ganlite::io
