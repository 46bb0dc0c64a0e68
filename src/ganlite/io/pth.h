// PyTorch state dicts in `torch.save`'s zip format (the default since PyTorch 1.6).
//
// LibTorch's own pickle_load rejects the OrderedDict that `module.state_dict()` returns (its
// `_metadata` attribute is pickled with a BUILD opcode), so the reader is a small unpickler of
// its own over the zip entries: dicts, OrderedDicts, lists/tuples, numbers, strings, tensors
// (_rebuild_tensor_v2, _rebuild_parameter) and storages. Anything else becomes an opaque value
// that flattening skips. Limits: values nested deeper than 1000 levels (deeper than torch.save
// can write) or more than 2^22 values throw Error, as does a tensor view with more elements
// than its storage; nothing in the file can make the reader recurse.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::io {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Every tensor of the file, nested dicts flattened with '.' ("state_dict.conv.weight"), in file
// order; non-tensor values (epoch numbers, optimiser hyper-parameters) are skipped. CPU tensors.
// A legacy (pre-1.6, non-zip) file throws Error explaining how to re-save it; a file without
// tensors, a TorchScript archive or a corrupt file throws Error naming the file.
NamedTensors load_pth_state_dict(const std::filesystem::path& path);
// Same, from the bytes of a file; `source` names it in errors.
NamedTensors parse_pth_state_dict(const std::string& bytes, const std::string& source);

// Writes a plain dict {name: tensor} in the zip format that Python's torch.load reads
// (tensors moved to CPU). Atomic.
void save_pth_state_dict(const std::filesystem::path& path, const NamedTensors& tensors);

}  // namespace ganlite::io
