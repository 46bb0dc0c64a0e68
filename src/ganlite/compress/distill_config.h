// Settings of a distillation run (methods.md 3.2-3.5): which terms, their weights, the teacher
// and student files. Stored in RUN_DIR/config.json as TrainConfig::distill, so `ganlite distill
// --resume RUN_DIR` rebuilds the same task.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <map>
#include <string>
#include <vector>

namespace ganlite::compress {

// Haar levels of WKD: each halves the image side, so 13 reach 1 pixel at 8192 (the largest
// image size, train/train_config.h).
inline constexpr int kMaxWkdLevels = 13;

// Methods a run may combine with '+': ka, mse, wkd, dcd.
const std::vector<std::string>& valid_distill_methods();
// Names kept for methods not built yet: refused with a message saying so (none today).
const std::vector<std::string>& reserved_distill_methods();

// "ka+mse" -> {"ka", "mse"}; "none" -> {} (no distillation term: GAN + recon only). Throws
// UsageError for an empty part, a repeated method, an unknown one (listing the valid ones), a
// reserved one, or "none" combined with another.
std::vector<std::string> parse_distill_methods(const std::string& spec);

struct DistillConfig {
  std::vector<std::string> methods;        // in the order given; summed with their weights
  std::map<std::string, double> weights;   // per method; missing ones get the defaults below
  std::string teacher;                     // generator file of the frozen teacher
  std::string student;                     // generator file of the student (e.g. `ganlite prune` output)
  std::string restore_d;                   // optional discriminator file to start D from
  double lambda_recon = -1;                // < 0: pix2pix 100; cyclegan 5 (10 when the method is mse alone)
  double lambda_gan = 1;
  double lambda_distill = -1;              // default weight of ka / mse; < 0: 1 (cyclegan mse: 0.01)
  int wkd_levels = 4;
  std::string wkd_distance = "l1";         // l1 (paper) | mse (released code)

  // DCD (methods.md 3.4).
  int teacher_ndf = 0;                     // teacher D width; 0: the run's ndf before student_ndf
  std::string dcd_restore_teacher_d;       // optional trained D to start the teacher D from
  double lambda_dcd_gan = -1;              // student's GAN term against the teacher D; < 0: lambda_gan
  std::string vgg_weights;                 // torchvision vgg16 state dict: enables the perceptual terms
  double lambda_vgg_feature = 1;           // relu2_2 feature L1 (released DCD code)
  double lambda_vgg_style = 1;             // Gram matrices of relu2_2, MSE

  // Discriminator compression: the student's D width (0: the run's ndf), or pruned from
  // restore_d keeping the channels with the largest scores (prune_d_ratio of them removed).
  int student_ndf = 0;
  double prune_d_ratio = 0;

  // Fills every default for `task` (pix2pix | cyclegan): lambda_recon, one weight per method
  // (wkd: 0.4, its released alpha; dcd 1) and lambda_dcd_gan. Idempotent.
  DistillConfig resolved(const std::string& task) const;
  // Throws UsageError naming the bad field; for a method needing pairs within a batch (ka),
  // also when batch_size is too small, saying why.
  void validate(int batch_size) const;
  std::string method_spec() const;  // "ka+mse", "none" without methods
  bool uses(const std::string& method) const;

  nlohmann::json to_json() const;
  // Strict and bounded (util/json_read.h): throws UsageError naming `file` and the bad key,
  // type or value ("distill.wkd_levels").
  static DistillConfig from_json(const nlohmann::json& j, const std::string& file = "");
  std::string to_json_string() const;
  static DistillConfig from_json_string(const std::string& text, const std::string& file = "");
};

// The smallest batch a method works with (ka: 2, the others 1).
int min_batch_size_for(const std::string& method);

}  // namespace ganlite::compress
