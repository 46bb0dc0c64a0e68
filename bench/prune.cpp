// Wall time of CAT's one-step pruning (binary search on the global |gamma| threshold, then the
// student built with inherited weights) for the 43.5G inception teacher to 2.6G MACs at 256x256,
// and for a ResNet-9 ngf64 BatchNorm teacher to 1/10 of its MACs. Gammas are uniform in
// (0.05, 1), like a trained teacher's spread. Target (issue 4): under 5 s for the inception case.
// Usage: bench_prune [--repeats N] [--threads N]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ganlite/compress/prune.h"
#include "ganlite/nn/generator.h"
#include "ganlite/util/device.h"

namespace {

struct Case {
  const char* label;
  const char* arch;
  const char* norm;
  double budget_fraction;  // of the teacher's MACs; < 0: an absolute budget in MACs
  double budget_macs;
};

}  // namespace

int main(int argc, char** argv) {
  int repeats = 3;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--repeats N] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  ganlite::set_threads(threads);
  std::printf("one-step pruning at 256x256, inherited weights, threads %d, median of %d\n", torch::get_num_threads(),
              repeats);
  // search_macs: CAT's count inside the search (BatchNorm left out), which the budget bounds;
  // macs_after: methods.md's count of the same student.
  std::printf("%-34s %14s %14s %14s %14s %8s %6s %9s\n", "teacher -> budget", "macs_before", "budget", "search_macs",
              "macs_after", "of budget", "steps", "seconds");
  const std::vector<Case> cases = {{"inception ngf64 IN-affine -> 2.6G", "inception", "instance_affine", -1, 2.6e9},
                                   {"inception ngf64 BN -> 2.6G", "inception", "batch", -1, 2.6e9},
                                   {"resnet ngf64 BN -> 1/10", "resnet", "batch", 0.1, 0}};
  for (const auto& c : cases) {
    ganlite::nn::ArchConfig config;
    config.arch = c.arch;
    config.ngf = 64;
    config.norm = c.norm;
    torch::manual_seed(5);
    auto teacher = ganlite::nn::make_generator(config);
    {
      torch::NoGradGuard no_grad;
      for (const auto& n : teacher->scored_norms()) n.weight().uniform_(0.05, 1.0);
    }
    const int64_t teacher_macs = ganlite::compress::count_generator_macs(config, 256);
    ganlite::compress::PruneOptions options;
    options.target_macs = c.budget_fraction > 0 ? c.budget_fraction * static_cast<double>(teacher_macs) : c.budget_macs;
    std::vector<double> seconds;
    ganlite::compress::PruneResult result;
    for (int r = 0; r < repeats; ++r) {
      result = ganlite::compress::prune_to_mac_budget(*teacher, options);
      seconds.push_back(result.seconds);
    }
    std::sort(seconds.begin(), seconds.end());
    std::printf("%-34s %14lld %14.0f %14lld %14lld %8.2f%% %6d %9.3f\n", c.label,
                static_cast<long long>(result.macs_before), options.target_macs,
                static_cast<long long>(result.search_macs), static_cast<long long>(result.macs_after),
                100.0 * static_cast<double>(result.search_macs) / options.target_macs, result.search_steps,
                seconds[seconds.size() / 2]);
    std::fflush(stdout);
  }
  return 0;
}
