// Settings of a distillation run (methods.md 3.2-3.5): which terms, their weights, the teacher
// and student files, and each method's own options (method_registry.h). A run's config
// (DistillRunConfig: the TrainConfig and these, typed) is stored in RUN_DIR/config.json with
// these settings under "distill", so `ganlite distill --resume RUN_DIR` rebuilds the same task.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <map>
#include <string>
#include <vector>

#include "ganlite/compress/method_registry.h"
#include "ganlite/train/train_config.h"

namespace ganlite::compress {

// Methods a run may combine with '+': the registered ones (method_registry.h).
const std::vector<std::string>& valid_distill_methods();

// "a+b" -> {"a", "b"}; "none" -> {} (no distillation term: GAN + recon only). Throws
// UsageError for an empty part, a repeated method, an unknown one (listing the valid ones), or
// "none" combined with another.
std::vector<std::string> parse_distill_methods(const std::string& spec);

inline constexpr int kMaxNDis = 1000000;

struct DistillConfig {
  DistillConfig();  // every registered method's options at their defaults

  std::vector<std::string> methods;        // in the order given; summed with their weights
  std::map<std::string, double> weights;   // per method; missing ones get the method's default
  std::string teacher;                     // generator file of the frozen teacher
  std::string student;                     // generator file of the student (e.g. `ganlite prune` output)
  std::string restore_d;                   // optional discriminator file to start D from
  double lambda_recon = -1;                // < 0: pix2pix 100; cyclegan 5 (10 for mse alone: its method says so)
  double lambda_gan = 1;
  double lambda_distill = -1;              // weight of the methods that follow it; < 0: their defaults

  // Discriminator compression: the student's D width (0: the run's ndf), or pruned from
  // restore_d keeping the channels with the largest scores (prune_d_ratio of them removed).
  int student_ndf = 0;
  double prune_d_ratio = 0;

  // Online distillation (online_teacher.h; OMGD / DCD-official): "ARCH:NGF" trains that teacher
  // G and its D from scratch alongside the student instead of reading a frozen `teacher`; "" off.
  // Stored in config.json only when on (a run written before reads as off).
  std::string online_teacher;
  int n_dis = 0;              // the teacher trains on every n_dis-th step (0: the task's, 4 unpaired / 1 paired)
  bool allow_no_vgg = false;  // an online run may go without --vgg-weights (its VGG terms then off)
  double lambda_ssim = 0;     // online student: lambda x (1 - SSIM(S(A), T(A))) (OMGD 10; DCD's release: off)
  double lambda_tv = 0;       // online student: lambda x TV(S(A)) (OMGD 1e-5; DCD's release: off)
  bool online() const { return !online_teacher.empty(); }

  // Per registered method (used or not), its options by its field table: stored flat in the
  // JSON under their own keys (wkd_levels, teacher_ndf, ...), as before the registry.
  std::map<std::string, OptionValues> method_options;
  const OptionValues& options(const std::string& method) const;
  OptionValues& options(const std::string& method);
  // Flat access by option key (keys are unique over methods); Error for an unknown key.
  const OptionValue& option(const std::string& key) const;
  void set_option(const std::string& key, OptionValue value);

  // Fills every default for `task` (pix2pix | cyclegan): lambda_recon, one weight per method
  // and the methods' own resolved defaults. Idempotent.
  DistillConfig resolved(const std::string& task) const;
  // Throws UsageError naming the bad field; for a method needing several samples per batch
  // (ka), also when batch_size is too small, saying why.
  void validate(int batch_size) const;
  void validate_online() const;  // part of validate: the online-teacher fields
  std::string method_spec() const;  // "ka+mse", "none" without methods
  bool uses(const std::string& method) const;

  nlohmann::json to_json() const;
  // Strict and bounded (util/json_read.h): throws UsageError naming `file` and the bad key,
  // type or value ("distill.wkd_levels").
  static DistillConfig from_json(const nlohmann::json& j, const std::string& file = "");
  std::string to_json_string() const;
  static DistillConfig from_json_string(const std::string& text, const std::string& file = "");
};

// The whole config of a distillation run: the training settings (data, schedule, D, seed ...;
// the student's architecture as `train.generator`) and the distillation settings. Its JSON is
// RUN_DIR/config.json: the TrainConfig's keys with the DistillConfig's under "distill".
struct DistillRunConfig {
  train::TrainConfig train;
  DistillConfig distill;

  nlohmann::json to_json() const;
  std::string to_json_string() const;  // config.json's text
  // Strict and bounded like TrainConfig::from_json and DistillConfig::from_json; UsageError
  // naming `file` when the config has no "distill" section (a plain training run's config).
  static DistillRunConfig from_json(const nlohmann::json& j, const std::string& file = "");
  static DistillRunConfig load(const std::string& path);
};

// The smallest batch a method works with (its registry entry: ka 2, the others 1).
int min_batch_size_for(const std::string& method);

}  // namespace ganlite::compress
