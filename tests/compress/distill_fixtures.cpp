#include "distill_fixtures.h"

#include <gtest/gtest.h>

#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"

namespace fs = std::filesystem;

namespace ganlite::testing {

nn::ArchConfig inception(int ngf, const std::string& norm) {
  nn::ArchConfig c;
  c.arch = "inception";
  c.ngf = ngf;
  c.n_blocks = 3;
  c.norm = norm;
  return c;
}

Pair make_pair_files(const TempDir& dir, const std::string& norm) {
  torch::manual_seed(11);
  auto teacher = nn::make_generator(inception(8, norm));
  auto student = nn::make_generator(inception(4, norm));
  Pair p{dir / "teacher.safetensors", dir / "student.safetensors"};
  io::save_generator(p.teacher, *teacher);
  io::save_generator(p.student, *student);
  return p;
}

train::TrainConfig base_config(const std::string& task, int batch_size) {
  train::TrainConfig c;
  c.task = task;
  c.dataroot = "unused-by-the-task";
  c.ndf = 4;
  c.batch_size = batch_size;
  c.load_size = 32;
  c.crop_size = 32;
  c.lr = 1e-3;
  c.seed = 3;
  return c;
}

compress::DistillConfig distill(const Pair& p, const std::string& methods) {
  compress::DistillConfig d;
  d.methods = compress::parse_distill_methods(methods);
  d.teacher = p.teacher.string();
  d.student = p.student.string();
  return d;
}

data::Batch fixed_batch(int n) {
  torch::manual_seed(5);
  data::Batch b;
  b.a = torch::rand({n, 3, 32, 32}) * 2 - 1;
  b.b = torch::rand({n, 3, 32, 32}) * 2 - 1;
  return b;
}

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& [k, t] : io::state_dict(m)) s[k] = t.detach().clone();
  return s;
}

double loss_of(const train::Losses& losses, const std::string& name) {
  for (const auto& [n, v] : losses) {
    if (n == name) return v;
  }
  ADD_FAILURE() << "no loss named " << name;
  return 0;
}

}  // namespace ganlite::testing
