// Step parity with the reference code (docs/fidelity.md, "Step parity"): ganlite's real training
// step (a TrainTask as the Trainer builds it) runs K steps from known weights on fixed batches;
// an independent PyTorch script (tests/parity/*.py, written from the public code) does the same
// K steps from the same weights on the same batches; every logged loss per step and every tensor
// after K steps are compared.
//
// The exchange, all in one temporary folder:
//   inputs.npz      init.<module>.<key> (every parameter and buffer of the task's modules, under
//                   the public code's state-dict keys), batch.<k>.a / batch.<k>.b
//   settings.json   the hyperparameters the script needs (the test writes them from the config)
//   reference.npz   written by the script: state.<module>.<key> after K steps
//   losses.json     written by the script: one object per step, loss name -> value
// Scripts import parity_common.py (models with the public key names, the npz / json exchange).
//
// Reused by the online-distillation parity tests: build the task, call `check_parity`.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/data/loader.h"
#include "ganlite/train/task.h"

namespace ganlite::parity {

// Steps compared per case, and the image side (the 70x70 PatchGAN needs 32 pixels for a 2x2
// prediction map).
constexpr int kSteps = 3;
constexpr int64_t kSize = 32;

#define SKIP_WITHOUT_REFERENCE()                                             \
  do {                                                                       \
    const std::string why = ::ganlite::parity::reference_unavailable_reason(); \
    if (!why.empty()) GTEST_SKIP() << why;                                   \
  } while (0)

using NamedModules = std::vector<std::pair<std::string, torch::nn::Module*>>;
using TensorMap = std::map<std::string, torch::Tensor>;

// Empty when /usr/bin/python3 can import torch and numpy; else why not (for GTEST_SKIP).
std::string reference_unavailable_reason();

// Converts every module (parameters and buffers) to float64 in place. Optimizers keep working:
// LibTorch's Module::to replaces each tensor's data, not the tensor the optimizer holds, and
// Adam's moments are created on its first step in the parameter's dtype.
void to_double(const NamedModules& modules);

// "<module>.<key>" -> a detached copy, for every parameter and buffer of the modules.
TensorMap state_of(const NamedModules& modules);

// K batches of n images size x size in (-1, 1), float64, from `seed`; b undefined when !with_b.
std::vector<data::Batch> fixed_batches(int steps, int64_t n, int64_t size, uint64_t seed, bool with_b = true);

struct StepLog {
  std::vector<train::Losses> losses;  // per step, as train_step returned them
  TensorMap final_state;
  TensorMap initial_state;            // before the steps (check_parity fills it)
};

// Runs task.train_step on each batch; the state of `modules` afterwards.
StepLog run_steps(train::TrainTask& task, const NamedModules& modules, const std::vector<data::Batch>& batches);

struct Reference {
  std::vector<std::map<std::string, double>> losses;
  TensorMap final_state;
  std::string output;  // the script's stdout and stderr
};

// Writes the exchange files into `dir`, runs tests/parity/<script> on it, reads its results.
// Adds a gtest failure (and returns an empty Reference) when the script fails.
Reference run_reference(const std::string& script, const std::filesystem::path& dir, const TensorMap& initial_state,
                        const std::vector<data::Batch>& batches, const nlohmann::json& settings);

struct Tolerance {
  double loss = 1e-6;    // |ours - ref| / |ref| per loss per step
  double weight = 1e-6;  // max|ours - ref| / max(max|ref|, weight_floor) per tensor
  // Adam moves a weight by about lr per step whatever its gradient, so a tensor that starts at
  // 0 (biases) is compared at the scale lr, not at its own (rounding-noise) magnitude.
  double weight_floor = 2e-4;
  // A tensor the reference moved by less than this over all steps is untrained: its gradient is
  // zero up to rounding (a conv bias an InstanceNorm / BatchNorm cancels exactly). Adam turns such
  // a gradient g (|g| << eps = 1e-8) into the step lr * g / eps, rounding noise amplified by
  // lr / eps, which two correct implementations do not share; any gradient above ~1e-3 eps moves
  // a weight by more than 1e-3 lr per step. Such a tensor must be untrained here too (moved by
  // less than this), and is not compared to 1e-6. Default: 1e-3 lr; 0 compares every tensor.
  double untrained_move = 2e-7;
};

struct Worst {
  double loss = 0, weight = 0;
  std::string loss_where, weight_where;
  int untrained = 0;  // tensors whose gradient was zero up to rounding (Tolerance::untrained_move)
};

// Compares every loss of every step (the same names on both sides) and every tensor (the same
// keys on both sides), adding gtest failures beyond `tol`; prints and returns the worst errors.
Worst expect_parity(const StepLog& ours, const Reference& ref, const Tolerance& tol, const std::string& what);

// The usual test body: initial state, K steps here, K steps in the script, comparison.
Worst check_parity(train::TrainTask& task, const NamedModules& modules, const std::vector<data::Batch>& batches,
                   const std::string& script, const nlohmann::json& settings, const Tolerance& tol,
                   const std::string& what);

}  // namespace ganlite::parity
