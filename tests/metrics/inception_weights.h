// Random FID Inception-v3 weights, written once per test binary through the .pth writer (the
// real pytorch-fid weights cannot be downloaded here). num_batches_tracked is left out, as in
// files written by older PyTorch versions; BatchNorm statistics are random so that loading
// them wrongly would change the features.
#pragma once
#include <torch/torch.h>

#include <filesystem>

#include "ganlite/io/pth.h"
#include "ganlite/metrics/inception.h"
#include "test_support.h"

namespace ganlite::testing {

inline ganlite::metrics::FidInceptionV3 random_inception(uint64_t seed) {
  ganlite::metrics::FidInceptionV3 net;
  ganlite::metrics::init_random_inception(net, seed);
  net->eval();
  return net;
}

inline ganlite::io::NamedTensors state_of(ganlite::metrics::FidInceptionV3& net) {
  ganlite::io::NamedTensors sd;
  for (const auto& p : net->named_parameters()) sd.emplace_back(p.key(), p.value());
  for (const auto& b : net->named_buffers()) {
    if (b.key().find("num_batches_tracked") == std::string::npos) sd.emplace_back(b.key(), b.value());
  }
  return sd;
}

// Path of the shared random weights (seed 0).
inline std::filesystem::path random_inception_weights() {
  static TempDir dir;
  static const std::filesystem::path path = [] {
    auto net = random_inception(0);
    const auto p = dir / "pt_inception-random.pth";
    ganlite::io::save_pth_state_dict(p, state_of(net));
    return p;
  }();
  return path;
}

}  // namespace ganlite::testing
