#include "parity_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/npz.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace ganlite::parity {

std::string reference_unavailable_reason() {
  if (testing::system_python().empty()) return "no /usr/bin/python3 for the reference scripts";
  if (!testing::python_has_module("torch")) return "no python3-torch for the reference scripts";
  if (!testing::python_has_module("numpy")) return "no python3-numpy for the reference scripts";
  return "";
}

void to_double(const NamedModules& modules) {
  for (const auto& [name, module] : modules) module->to(torch::kFloat64);
}

TensorMap state_of(const NamedModules& modules) {
  TensorMap state;
  for (const auto& [name, module] : modules) {
    for (const auto& [key, t] : io::state_dict(*module)) state[name + "." + key] = t.detach().clone();
  }
  return state;
}

std::vector<data::Batch> fixed_batches(int steps, int64_t n, int64_t size, uint64_t seed, bool with_b) {
  torch::manual_seed(seed);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  std::vector<data::Batch> batches;
  for (int k = 0; k < steps; ++k) {
    data::Batch b;
    b.a = torch::rand({n, 3, size, size}, f64) * 2 - 1;
    if (with_b) b.b = torch::rand({n, 3, size, size}, f64) * 2 - 1;
    b.global_size = n;
    batches.push_back(std::move(b));
  }
  return batches;
}

StepLog run_steps(train::TrainTask& task, const NamedModules& modules, const std::vector<data::Batch>& batches) {
  StepLog log;
  for (const auto& batch : batches) log.losses.push_back(task.train_step(batch));
  log.final_state = state_of(modules);
  return log;
}

Reference run_reference(const std::string& script, const fs::path& dir, const TensorMap& initial_state,
                        const std::vector<data::Batch>& batches, const nlohmann::json& settings) {
  TensorMap inputs;
  for (const auto& [key, t] : initial_state) inputs["init." + key] = t;
  for (size_t k = 0; k < batches.size(); ++k) {
    inputs["batch." + std::to_string(k) + ".a"] = batches[k].a;
    if (batches[k].b.defined()) inputs["batch." + std::to_string(k) + ".b"] = batches[k].b;
  }
  io::save_npz(dir / "inputs.npz", inputs);
  nlohmann::json s = settings;
  s["steps"] = batches.size();
  testing::write_text_file(dir / "settings.json", s.dump(2));

  Reference ref;
  const fs::path path = fs::path(GANLITE_SOURCE_DIR) / "tests" / "parity" / script;
  // -B: no __pycache__ next to the scripts.
  const auto r =
      testing::run_command(testing::system_python() + " -B '" + path.string() + "' '" + dir.string() + "' 2>&1");
  ref.output = r.output;
  if (r.exit_code != 0) {
    ADD_FAILURE() << script << " exited with " << r.exit_code << ":\n" << r.output;
    return ref;
  }
  for (const auto& step : nlohmann::json::parse(testing::read_text_file(dir / "losses.json"))) {
    std::map<std::string, double> losses;
    for (const auto& [name, value] : step.items()) losses[name] = value.get<double>();
    ref.losses.push_back(std::move(losses));
  }
  for (const auto& [key, t] : io::load_npz(dir / "reference.npz")) {
    if (key.rfind("state.", 0) == 0) ref.final_state[key.substr(6)] = t;
  }
  return ref;
}

namespace {

double relative(double ours, double ref) {
  const double diff = std::abs(ours - ref);
  return diff == 0 ? 0.0 : diff / std::max(std::abs(ref), 1e-300);
}

void compare_losses(const StepLog& ours, const Reference& ref, const Tolerance& tol, const std::string& what,
                    Worst& worst) {
  ASSERT_EQ(ours.losses.size(), ref.losses.size()) << what << ": steps";
  for (size_t k = 0; k < ours.losses.size(); ++k) {
    std::set<std::string> names;
    for (const auto& [name, value] : ours.losses[k]) {
      names.insert(name);
      const auto it = ref.losses[k].find(name);
      if (it == ref.losses[k].end()) {
        ADD_FAILURE() << what << ": the reference logs no " << name << " at step " << k;
        continue;
      }
      const double err = relative(value, it->second);
      const std::string where = name + " at step " + std::to_string(k);
      EXPECT_LE(err, tol.loss) << what << ": " << where << ": ganlite " << value << ", reference " << it->second;
      if (err >= worst.loss) worst = {err, worst.weight, where, worst.weight_where};
    }
    for (const auto& [name, value] : ref.losses[k]) {
      EXPECT_TRUE(names.count(name)) << what << ": ganlite logs no " << name << " at step " << k;
    }
  }
}

void compare_weights(const StepLog& ours, const Reference& ref, const Tolerance& tol, const std::string& what,
                     Worst& worst) {
  for (const auto& [key, t] : ours.final_state) {
    const auto it = ref.final_state.find(key);
    if (it == ref.final_state.end()) {
      ADD_FAILURE() << what << ": the reference returned no " << key;
      continue;
    }
    if (t.sizes() != it->second.sizes()) {
      ADD_FAILURE() << what << ": " << key << " has shape " << t.sizes() << " here, " << it->second.sizes() << " there";
      continue;
    }
    const auto a = t.to(torch::kFloat64), b = it->second.to(torch::kFloat64);
    if (const auto init = ours.initial_state.find(key); init != ours.initial_state.end() && b.numel()) {
      const auto before = init->second.to(torch::kFloat64);
      const double ref_move = (b - before).abs().max().item<double>();
      if (ref_move < tol.untrained_move) {
        const double our_move = (a - before).abs().max().item<double>();
        EXPECT_LT(our_move, tol.untrained_move)
            << what << ": " << key << " moved by " << our_move << " here, by " << ref_move << " in the reference";
        ++worst.untrained;
        continue;
      }
    }
    const double scale = std::max(b.numel() ? b.abs().max().item<double>() : 0.0, tol.weight_floor);
    const double err = b.numel() ? (a - b).abs().max().item<double>() / scale : 0.0;
    EXPECT_LE(err, tol.weight) << what << ": " << key << " (scale " << scale << ")";
    if (err >= worst.weight) {
      worst.weight = err;
      worst.weight_where = key;
    }
  }
  for (const auto& [key, t] : ref.final_state) {
    EXPECT_TRUE(ours.final_state.count(key)) << what << ": ganlite has no " << key;
  }
}

}  // namespace

Worst expect_parity(const StepLog& ours, const Reference& ref, const Tolerance& tol, const std::string& what) {
  Worst worst;
  compare_losses(ours, ref, tol, what, worst);
  compare_weights(ours, ref, tol, what, worst);
  std::cerr << "[parity] " << what << ": worst loss error " << worst.loss << " (" << worst.loss_where
            << "), worst weight error " << worst.weight << " (" << worst.weight_where << ") over "
            << ours.final_state.size() << " tensors (" << worst.untrained
            << " untrained: gradient zero up to rounding, moved < " << tol.untrained_move << ")\n";
  return worst;
}

Worst check_parity(train::TrainTask& task, const NamedModules& modules, const std::vector<data::Batch>& batches,
                   const std::string& script, const nlohmann::json& settings, const Tolerance& tol,
                   const std::string& what) {
  testing::TempDir dir;
  const TensorMap initial = state_of(modules);
  StepLog ours = run_steps(task, modules, batches);
  ours.initial_state = initial;
  const Reference ref = run_reference(script, dir.path(), initial, batches, settings);
  if (ref.losses.empty()) return {};
  // The steps must move the weights far beyond the tolerance, or agreeing proves nothing.
  double moved = 0;
  std::string where;
  for (const auto& [key, t] : ours.final_state) {
    const auto& before = initial.at(key);
    const double scale = std::max(before.numel() ? before.abs().max().item<double>() : 0.0, tol.weight_floor);
    const double change = before.numel() ? (t - before).abs().max().item<double>() / scale : 0.0;
    if (change > moved) {
      moved = change;
      where = key;
    }
  }
  EXPECT_GT(moved, 1e3 * tol.weight) << what << ": the steps hardly moved the weights (most: " << where << ")";
  return expect_parity(ours, ref, tol, what);
}

}  // namespace ganlite::parity
