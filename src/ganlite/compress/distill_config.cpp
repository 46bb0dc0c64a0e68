#include "ganlite/compress/distill_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

const std::vector<std::string>& valid_distill_methods() {
  static const std::vector<std::string> v{"ka", "mse", "wkd"};
  return v;
}

const std::vector<std::string>& reserved_distill_methods() {
  static const std::vector<std::string> v{"dcd"};
  return v;
}

std::vector<std::string> parse_distill_methods(const std::string& spec) {
  std::vector<std::string> methods;
  size_t begin = 0;
  while (true) {
    const size_t end = spec.find('+', begin);
    const std::string part = spec.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (part.empty()) {
      throw UsageError("--method '" + spec + "' has an empty part; write methods joined by '+', e.g. ka+mse");
    }
    if (contains(reserved_distill_methods(), part)) {
      throw UsageError("distillation method '" + part + "' is not implemented yet (valid: ka, mse, wkd)");
    }
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
  require(!methods.empty(), "no distillation method given (--method ka|mse|wkd, or a combination like ka+mse)");
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
  require(wkd_levels >= 1, "--wkd-levels must be >= 1, got " + std::to_string(wkd_levels));
  if (wkd_distance != "l1" && wkd_distance != "mse") throw_bad_choice("--wkd-distance", wkd_distance, {"l1", "mse"});
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
  return s;
}

nlohmann::json DistillConfig::to_json() const {
  return nlohmann::json{{"methods", methods},           {"weights", weights},
                        {"teacher", teacher},           {"student", student},
                        {"restore_d", restore_d},       {"lambda_recon", lambda_recon},
                        {"lambda_gan", lambda_gan},     {"lambda_distill", lambda_distill},
                        {"wkd_levels", wkd_levels},     {"wkd_distance", wkd_distance}};
}

DistillConfig DistillConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw UsageError("the 'distill' config must be a JSON object");
  static const std::set<std::string> known{"methods",    "weights",        "teacher",    "student",     "restore_d",
                                           "lambda_recon", "lambda_gan", "lambda_distill", "wkd_levels", "wkd_distance"};
  for (const auto& item : j.items()) {
    if (!known.count(item.key())) throw UsageError("unknown key 'distill." + item.key() + "'");
  }
  DistillConfig c;
  auto get = [&](const char* key, auto& value) {
    const auto it = j.find(key);
    if (it == j.end()) return;
    try {
      it->get_to(value);
    } catch (const nlohmann::json::exception&) {
      throw UsageError(std::string("config key 'distill.") + key + "' has the wrong type: " + it->dump());
    }
  };
  get("methods", c.methods);
  get("weights", c.weights);
  get("teacher", c.teacher);
  get("student", c.student);
  get("restore_d", c.restore_d);
  get("lambda_recon", c.lambda_recon);
  get("lambda_gan", c.lambda_gan);
  get("lambda_distill", c.lambda_distill);
  get("wkd_levels", c.wkd_levels);
  get("wkd_distance", c.wkd_distance);
  return c;
}

std::string DistillConfig::to_json_string() const { return to_json().dump(); }

DistillConfig DistillConfig::from_json_string(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(std::string("the 'distill' config is not valid JSON: ") + e.what());
  }
  return from_json(j);
}

}  // namespace ganlite::compress
