// Shared test data for the report tests: tiny synthetic datasets (32x32) and tiny generators
// (resnet ngf 4, 2 blocks) saved in run folders, built once per test binary.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ganlite/data/synthetic.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "test_support.h"

namespace ganlite::testing {

inline nn::ArchConfig tiny_arch(int ngf = 4) {
  nn::ArchConfig c;
  c.arch = "resnet";
  c.ngf = ngf;
  c.n_blocks = 2;
  return c;
}

struct ReportFixture {
  TempDir dir;
  std::filesystem::path paired;    // edges2shapes: test/ of 5 A|B images
  std::filesystem::path unpaired;  // shapes2stripes: testA/, testA_truth/
  std::filesystem::path teacher;   // teacher_run/checkpoints/latest_net_G.safetensors (with logs)
  std::filesystem::path student;   // loose file, no run folder

  ReportFixture() {
    paired = dir / "edges";
    unpaired = dir / "stripes";
    data::SyntheticOptions o;
    o.count = 4;
    o.test_count = 5;
    o.size = 32;
    o.threads = 1;
    data::make_synthetic_dataset(paired, o);
    o.kind = "shapes2stripes";
    o.test_count = 3;
    data::make_synthetic_dataset(unpaired, o);

    const auto run = dir / "teacher_run";
    std::filesystem::create_directories(run / "checkpoints");
    teacher = run / "checkpoints" / "latest_net_G.safetensors";
    student = dir / "student_net_G.safetensors";
    torch::manual_seed(1);
    auto t = nn::make_generator(tiny_arch(8));
    io::save_generator(teacher, *t);
    torch::manual_seed(2);
    auto s = nn::make_generator(tiny_arch(4));
    io::save_generator(student, *s);
    std::string log;
    for (int step = 10; step <= 50; step += 10) {
      log += nlohmann::json{{"step", step},          {"epoch", 0},          {"epoch_iter", step},
                            {"G_GAN", 1.0 / step},   {"G_L1", 20.0 - step / 10.0}, {"D_real", 0.5},
                            {"D_fake", 0.4},         {"lr", 2e-4},          {"wall_seconds", step * 0.1}}
                 .dump() +
             "\n";
    }
    log += "{\"step\": 60, \"G_GA";  // a torn last line, as a killed run leaves it
    write_text_file(run / "metrics.jsonl", log);
    write_text_file(run / "val.jsonl", "{\"epoch\": 0, \"psnr\": 11.5, \"ssim\": 0.3}\n"
                                       "{\"epoch\": 1, \"psnr\": 12.5, \"ssim\": 0.4}\n");
  }
};

inline ReportFixture& report_fixture() {
  static ReportFixture fixture;
  return fixture;
}

}  // namespace ganlite::testing
