// Device and thread selection shared by every command: `--device cpu|cuda[:N]`, `--threads N`.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace ganlite {

// Parses "cpu", "cuda", "cuda:1"; throws UsageError naming the valid choices, or when CUDA
// is asked for but this build or machine has none.
torch::Device parse_device(const std::string& name);

// Names of the devices usable here, "cpu" first.
std::vector<std::string> available_devices();

// Sets LibTorch's intra-op threads; 0 means one per core.
void set_threads(int threads);

}  // namespace ganlite
