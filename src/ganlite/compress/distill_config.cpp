#include "ganlite/compress/distill_config.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "ganlite/train/train_config.h"
#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"

namespace ganlite::compress {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

const std::vector<std::string>& valid_distill_methods() {
  static const std::vector<std::string> v{"ka", "mse", "wkd", "dcd"};
  return v;
}

const std::vector<std::string>& reserved_distill_methods() {
  static const std::vector<std::string> v{};
  return v;
}

std::vector<std::string> parse_distill_methods(const std::string& spec) {
  std::vector<std::string> methods;
  if (spec == "none") return methods;
  size_t begin = 0;
  while (true) {
    const size_t end = spec.find('+', begin);
    const std::string part = spec.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (part.empty()) {
      throw UsageError("--method '" + spec + "' has an empty part; write methods joined by '+', e.g. ka+mse");
    }
    if (contains(reserved_distill_methods(), part)) {
      throw UsageError("distillation method '" + part + "' is not implemented yet (valid: ka, mse, wkd, dcd)");
    }
    if (part == "none") throw UsageError("--method none means no distillation term and cannot be combined ('" + spec + "')");
    if (!contains(valid_distill_methods(), part)) throw_bad_choice("distillation method", part, valid_distill_methods());
    if (contains(methods, part)) throw UsageError("--method '" + spec + "' names '" + part + "' twice");
    methods.push_back(part);
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return methods;
}

int min_batch_size_for(const std::string& method) { return method == "ka" ? 2 : 1; }

DistillConfig DistillConfig::resolved(const std::string& task) const {
  DistillConfig c = *this;
  const bool mse_alone = c.methods == std::vector<std::string>{"mse"};
  if (c.lambda_recon < 0) c.lambda_recon = task == "pix2pix" ? 100.0 : (mse_alone ? 10.0 : 5.0);
  if (c.lambda_dcd_gan < 0) c.lambda_dcd_gan = c.lambda_gan;
  for (const auto& m : c.methods) {
    if (c.weights.count(m)) continue;
    if (m == "wkd") {
      c.weights[m] = 0.4;
    } else if (c.lambda_distill >= 0) {
      c.weights[m] = c.lambda_distill;
    } else {
      c.weights[m] = (m == "mse" && task == "cyclegan") ? 0.01 : 1.0;
    }
  }
  return c;
}

void DistillConfig::validate(int batch_size) const {
  for (const auto& m : methods) {
    if (!contains(valid_distill_methods(), m)) throw_bad_choice("distillation method", m, valid_distill_methods());
  }
  for (const auto& [m, w] : weights) {
    if (!contains(methods, m)) {
      throw UsageError("a weight is given for method '" + m + "' but --method is '" + method_spec() + "'");
    }
    require(w >= 0, "the weight of method '" + m + "' must be >= 0, got " + std::to_string(w));
  }
  require(!teacher.empty(), "no teacher given (--teacher FILE, a generator file)");
  require(!student.empty(), "no student given (--student FILE, a generator file, e.g. from `ganlite prune`)");
  require(lambda_gan >= 0, "--lambda-gan must be >= 0");
  require(wkd_levels >= 1 && wkd_levels <= kMaxWkdLevels,
          "--wkd-levels must be in [1, " + std::to_string(kMaxWkdLevels) + "], got " + std::to_string(wkd_levels));
  if (wkd_distance != "l1" && wkd_distance != "mse") throw_bad_choice("--wkd-distance", wkd_distance, {"l1", "mse"});
  const std::string ndf_range = "[0, " + std::to_string(train::kMaxNdf) + "] (0: the run's --ndf), got ";
  require(teacher_ndf >= 0 && teacher_ndf <= train::kMaxNdf, "--teacher-ndf must be in " + ndf_range + std::to_string(teacher_ndf));
  require(student_ndf >= 0 && student_ndf <= train::kMaxNdf, "--student-ndf must be in " + ndf_range + std::to_string(student_ndf));
  require(prune_d_ratio >= 0 && prune_d_ratio < 1,
          "--prune-d-ratio must be in [0, 1) (the fraction of D channels removed), got " + std::to_string(prune_d_ratio));
  if (prune_d_ratio > 0) {
    require(!restore_d.empty(), "--prune-d-ratio prunes a trained discriminator: give it with --restore-d FILE");
  }
  require(lambda_vgg_feature >= 0 && lambda_vgg_style >= 0, "--lambda-vgg / --lambda-style must be >= 0");
  const bool dcd = uses("dcd");
  if (!dcd) {
    auto refuse = [&](bool given, const char* flag) {
      if (given) throw UsageError(std::string(flag) + " belongs to DCD: add dcd to --method (e.g. --method dcd+wkd)");
    };
    refuse(teacher_ndf != 0, "--teacher-ndf");
    refuse(!dcd_restore_teacher_d.empty(), "--dcd-restore-teacher-d");
    refuse(!vgg_weights.empty(), "--vgg-weights");
  }
  for (const auto& m : methods) {
    if (batch_size < min_batch_size_for(m)) {
      throw UsageError("--method " + m + " needs --batch-size >= " + std::to_string(min_batch_size_for(m)) +
                       " (got " + std::to_string(batch_size) +
                       "): kernel alignment compares the samples of a batch with each other (N x N Gram "
                       "matrices); with one sample KA is always 1 and gives the student no signal");
    }
  }
}

std::string DistillConfig::method_spec() const {
  std::string s;
  for (const auto& m : methods) s += (s.empty() ? "" : "+") + m;
  return s.empty() ? "none" : s;
}

bool DistillConfig::uses(const std::string& method) const { return contains(methods, method); }

nlohmann::json DistillConfig::to_json() const {
  return nlohmann::json{{"methods", methods},           {"weights", weights},
                        {"teacher", teacher},           {"student", student},
                        {"restore_d", restore_d},       {"lambda_recon", lambda_recon},
                        {"lambda_gan", lambda_gan},     {"lambda_distill", lambda_distill},
                        {"wkd_levels", wkd_levels},     {"wkd_distance", wkd_distance},
                        {"teacher_ndf", teacher_ndf},   {"dcd_restore_teacher_d", dcd_restore_teacher_d},
                        {"lambda_dcd_gan", lambda_dcd_gan}, {"vgg_weights", vgg_weights},
                        {"lambda_vgg_feature", lambda_vgg_feature}, {"lambda_vgg_style", lambda_vgg_style},
                        {"student_ndf", student_ndf},   {"prune_d_ratio", prune_d_ratio}};
}

DistillConfig DistillConfig::from_json(const nlohmann::json& j, const std::string& file) {
  const JsonFields f(j, file, "distill.");
  f.refuse_unknown({"methods", "weights", "teacher", "student", "restore_d", "lambda_recon", "lambda_gan",
                    "lambda_distill", "wkd_levels", "wkd_distance", "teacher_ndf", "dcd_restore_teacher_d",
                    "lambda_dcd_gan", "vgg_weights", "lambda_vgg_feature", "lambda_vgg_style", "student_ndf",
                    "prune_d_ratio"});
  constexpr double kHuge = std::numeric_limits<double>::max();
  const size_t methods = valid_distill_methods().size();
  DistillConfig c;
  f.get("methods", c.methods, methods);
  f.get("weights", c.weights, methods, 0.0, kHuge);
  f.get("teacher", c.teacher);
  f.get("student", c.student);
  f.get("restore_d", c.restore_d);
  f.get("lambda_recon", c.lambda_recon, -kHuge, kHuge);  // < 0: the task's default
  f.get("lambda_gan", c.lambda_gan, 0.0, kHuge);
  f.get("lambda_distill", c.lambda_distill, -kHuge, kHuge);
  f.get("wkd_levels", c.wkd_levels, 1, kMaxWkdLevels);
  f.get("wkd_distance", c.wkd_distance);
  f.get("teacher_ndf", c.teacher_ndf, 0, train::kMaxNdf);
  f.get("dcd_restore_teacher_d", c.dcd_restore_teacher_d);
  f.get("lambda_dcd_gan", c.lambda_dcd_gan, -kHuge, kHuge);
  f.get("vgg_weights", c.vgg_weights);
  f.get("lambda_vgg_feature", c.lambda_vgg_feature, 0.0, kHuge);
  f.get("lambda_vgg_style", c.lambda_vgg_style, 0.0, kHuge);
  f.get("student_ndf", c.student_ndf, 0, train::kMaxNdf);
  f.get("prune_d_ratio", c.prune_d_ratio, 0.0, 1.0);
  return c;
}

std::string DistillConfig::to_json_string() const { return to_json().dump(); }

DistillConfig DistillConfig::from_json_string(const std::string& text, const std::string& file) {
  return from_json(parse_config_json(text, file), file);
}

}  // namespace ganlite::compress
