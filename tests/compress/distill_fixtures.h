// Shared by the distillation tests: tiny inception teacher / student files (ngf 8 / 4, 3 blocks),
// a TrainConfig for 32x32 batches, fixed batches, parameter snapshots, loss lookup.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>

#include "ganlite/compress/distill_config.h"
#include "ganlite/data/loader.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/train/task.h"
#include "ganlite/train/train_config.h"
#include "test_support.h"

namespace ganlite::testing {

nn::ArchConfig inception(int ngf, const std::string& norm);

// Teacher (ngf 8) and student (ngf 4) generator files in `dir`.
struct Pair {
  std::filesystem::path teacher, student;
};
Pair make_pair_files(const TempDir& dir, const std::string& norm);

train::TrainConfig base_config(const std::string& task, int batch_size);
compress::DistillConfig distill(const Pair& p, const std::string& methods);
data::Batch fixed_batch(int n);
std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& m);
// The value of the loss named `name`; a test failure when there is none.
double loss_of(const train::Losses& losses, const std::string& name);

}  // namespace ganlite::testing
