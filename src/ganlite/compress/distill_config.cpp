#include "ganlite/compress/distill_config.h"

#include <algorithm>
#include <limits>
#include <set>
#include <variant>
#include <nlohmann/json.hpp>

#include "ganlite/compress/online_teacher.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"

namespace ganlite::compress {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

const std::vector<std::string>& valid_distill_methods() {
  static const std::vector<std::string> v = distill_method_names();
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
      const auto& v = valid_distill_methods();
      throw UsageError("--method '" + spec + "' has an empty part; write methods joined by '+', e.g. " + v.front() + "+" +
                       v.back());
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

int min_batch_size_for(const std::string& method) { return distill_method(method).min_batch_size; }

DistillConfig::DistillConfig() {
  for (const auto& m : distill_methods()) method_options[m.name] = m.defaults();
}

const OptionValues& DistillConfig::options(const std::string& method) const {
  const auto it = method_options.find(method);
  if (it == method_options.end()) throw Error("no options of distillation method '" + method + "'");
  return it->second;
}

OptionValues& DistillConfig::options(const std::string& method) {
  const auto it = method_options.find(method);
  if (it == method_options.end()) throw Error("no options of distillation method '" + method + "'");
  return it->second;
}

const OptionValue& DistillConfig::option(const std::string& key) const {
  const auto* m = method_of_option(key);
  if (!m) throw Error("no distillation option '" + key + "'");
  return options(m->name).values().at(key);
}

void DistillConfig::set_option(const std::string& key, OptionValue value) {
  const auto* m = method_of_option(key);
  if (!m) throw Error("no distillation option '" + key + "'");
  if (value.index() != m->field(key)->default_value.index()) {
    throw Error("distillation option '" + key + "' is given a value of another type");
  }
  options(m->name).set(key, std::move(value));
}

DistillConfig DistillConfig::resolved(const std::string& task) const {
  DistillConfig c = *this;
  if (c.lambda_recon < 0) {
    const double alone = c.methods.size() == 1 ? distill_method(c.methods[0]).cyclegan_recon_weight_alone : 0;
    // A paired task reconstructs B at pix2pix's lambda_L1; an unpaired one the teacher's output.
    const auto* kind = train::find_task_kind(task);
    c.lambda_recon = kind && kind->paired ? 100.0 : (alone > 0 ? alone : 5.0);
    if (kind && kind->label_maps) c.lambda_recon = 0;  // SPADE's objective has no L1 term
    if (c.online()) c.lambda_recon = 0;  // the released online student has no reconstruction term
  }
  if (c.online() && c.n_dis == 0 && train::find_task_kind(task)) c.n_dis = default_n_dis(task);
  // Every method's options are resolved, used or not, so config.json reads the same for any --method.
  for (const auto& m : distill_methods()) {
    if (m.resolve) m.resolve(c.options(m.name), c);
  }
  for (const auto& name : c.methods) {
    if (c.weights.count(name)) continue;
    const auto& m = distill_method(name);
    c.weights[name] = (m.follows_lambda_distill && c.lambda_distill >= 0) ? c.lambda_distill : m.default_weight(task);
  }
  return c;
}

namespace {

std::string number_text(const OptionField& f, double v) {
  return f.type == OptionType::Integer ? std::to_string(static_cast<int64_t>(v)) : std::to_string(v);
}

// A method's option values against its field table: bounds, choices, and options that only
// make sense with the method used.
void validate_options(const DistillMethod& m, const OptionValues& values, bool used, bool online) {
  for (const auto& f : m.options) {
    const OptionValue& v = values.values().at(f.key);
    if (v.index() != f.default_value.index()) throw UsageError(f.flag + " has a value of the wrong type");
    if (f.type == OptionType::Text) {
      const auto& text = std::get<std::string>(v);
      if (!f.choices.empty() && !contains(f.choices, text)) throw_bad_choice(f.flag, text, f.choices);
    } else {
      const double x = f.type == OptionType::Integer ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
      const bool open_above = f.max >= std::numeric_limits<double>::max();
      require(x >= f.min && x <= f.max,
              f.flag + " must be " +
                  (open_above ? ">= " + number_text(f, f.min)
                              : "in [" + number_text(f, f.min) + ", " + number_text(f, f.max) + "]") +
                  ", got " + number_text(f, x));
    }
    if (f.only_with_method && !used && !(online && f.online_student) && v != f.default_value) {
      throw UsageError(f.flag + " belongs to " + m.name + ": add " + m.name + " to --method (e.g. --method " + m.name +
                       " or a sum with it)");
    }
  }
}

}  // namespace

void DistillConfig::validate_online() const {
  require(lambda_ssim >= 0 && lambda_tv >= 0, "--lambda-ssim and --lambda-tv must be >= 0");
  require(n_dis >= 0 && n_dis <= kMaxNDis, "--n-dis must be in [0, " + std::to_string(kMaxNDis) + "] (0: the task's)");
  if (!online()) {
    const bool set = n_dis != 0 || allow_no_vgg || lambda_ssim != 0 || lambda_tv != 0;
    if (set) throw UsageError("--n-dis, --allow-no-vgg, --lambda-ssim and --lambda-tv belong to --online-teacher ARCH:NGF");
    return;
  }
  parse_online_teacher(online_teacher);
  if (!teacher.empty()) throw UsageError("--teacher FILE and --online-teacher ARCH:NGF exclude each other");
  const bool student_d = !restore_d.empty() || student_ndf != 0 || prune_d_ratio != 0;
  if (student_d) {
    throw UsageError("with --online-teacher the student has no discriminator of its own (OMGD / DCD-official): "
                     "drop --restore-d, --student-ndf and --prune-d-ratio");
  }
  if (!std::get<std::string>(option("dcd_restore_teacher_d")).empty()) {
    throw UsageError("--online-teacher trains its teacher D from scratch: drop --dcd-restore-teacher-d");
  }
  if (std::get<std::string>(option("vgg_weights")).empty() && !allow_no_vgg) {
    throw UsageError("--online-teacher trains the student with the released VGG16 losses (relu2_2 feature, Gram "
                     "style): give --vgg-weights FILE (torchvision's vgg16 state dict, never downloaded), or "
                     "--allow-no-vgg to train without them");
  }
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
  validate_online();
  require(online() || !teacher.empty(), "no teacher given (--teacher FILE, a generator file, or --online-teacher ARCH:NGF)");
  require(!student.empty(), "no student given (--student FILE, a generator file, e.g. from `ganlite prune`)");
  require(lambda_gan >= 0, "--lambda-gan must be >= 0");
  for (const auto& m : distill_methods()) validate_options(m, options(m.name), uses(m.name), online());
  const std::string ndf_range = "[0, " + std::to_string(train::kMaxNdf) + "] (0: the run's --ndf), got ";
  require(student_ndf >= 0 && student_ndf <= train::kMaxNdf, "--student-ndf must be in " + ndf_range + std::to_string(student_ndf));
  require(prune_d_ratio >= 0 && prune_d_ratio < 1,
          "--prune-d-ratio must be in [0, 1) (the fraction of D channels removed), got " + std::to_string(prune_d_ratio));
  if (prune_d_ratio > 0) {
    require(!restore_d.empty(), "--prune-d-ratio prunes a trained discriminator: give it with --restore-d FILE");
  }
  for (const auto& name : methods) {
    const auto& m = distill_method(name);
    if (batch_size < m.min_batch_size) {
      throw UsageError("--method " + name + " needs --batch-size >= " + std::to_string(m.min_batch_size) + " (got " +
                       std::to_string(batch_size) + "): " + m.min_batch_reason);
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
  nlohmann::json j{{"methods", methods},         {"weights", weights},       {"teacher", teacher},
                   {"student", student},         {"restore_d", restore_d},   {"lambda_recon", lambda_recon},
                   {"lambda_gan", lambda_gan},   {"lambda_distill", lambda_distill},
                   {"student_ndf", student_ndf}, {"prune_d_ratio", prune_d_ratio}};
  if (online()) {
    j["online_teacher"] = online_teacher;
    j["n_dis"] = n_dis;
    j["allow_no_vgg"] = allow_no_vgg;
    j["lambda_ssim"] = lambda_ssim;
    j["lambda_tv"] = lambda_tv;
  }
  for (const auto& [method, values] : method_options) {
    for (const auto& [key, value] : values.values()) {
      std::visit([&, k = key](const auto& v) { j[k] = v; }, value);
    }
  }
  return j;
}

DistillConfig DistillConfig::from_json(const nlohmann::json& j, const std::string& file) {
  const JsonFields f(j, file, "distill.");
  std::set<std::string> known{"methods",    "weights",    "teacher",        "student",     "restore_d",
                              "lambda_recon", "lambda_gan", "lambda_distill", "student_ndf", "prune_d_ratio",
                              "online_teacher", "n_dis", "allow_no_vgg", "lambda_ssim", "lambda_tv"};
  for (const auto& m : distill_methods()) {
    for (const auto& o : m.options) known.insert(o.key);
  }
  f.refuse_unknown(known);
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
  f.get("student_ndf", c.student_ndf, 0, train::kMaxNdf);
  f.get("prune_d_ratio", c.prune_d_ratio, 0.0, 1.0);
  // Absent in runs written before online distillation: off.
  f.get("online_teacher", c.online_teacher);
  f.get("n_dis", c.n_dis, 0, kMaxNDis);
  f.get("allow_no_vgg", c.allow_no_vgg);
  f.get("lambda_ssim", c.lambda_ssim, 0.0, kHuge);
  f.get("lambda_tv", c.lambda_tv, 0.0, kHuge);
  for (const auto& m : distill_methods()) {
    auto& values = c.options(m.name);
    for (const auto& o : m.options) {
      if (o.type == OptionType::Integer) {
        int64_t v = std::get<int64_t>(o.default_value);
        f.get(o.key, v, static_cast<int64_t>(o.min), static_cast<int64_t>(o.max));
        values.set_integer(o.key, v);
      } else if (o.type == OptionType::Number) {
        double v = std::get<double>(o.default_value);
        f.get(o.key, v, o.min, o.max);
        values.set_number(o.key, v);
      } else {
        std::string v = std::get<std::string>(o.default_value);
        f.get(o.key, v);
        values.set_text(o.key, v);
      }
    }
  }
  return c;
}

std::string DistillConfig::to_json_string() const { return to_json().dump(); }

DistillConfig DistillConfig::from_json_string(const std::string& text, const std::string& file) {
  return from_json(parse_config_json(text, file), file);
}

nlohmann::json DistillRunConfig::to_json() const {
  nlohmann::json j = train.to_json();
  j[train::kDistillSection] = distill.to_json();
  return j;
}

std::string DistillRunConfig::to_json_string() const { return train::config_file_text(to_json()); }

DistillRunConfig DistillRunConfig::from_json(const nlohmann::json& j, const std::string& file) {
  const JsonFields f(j, file);
  const auto* section = f.find(train::kDistillSection);
  if (!section) {
    throw UsageError((file.empty() ? std::string("the config") : "'" + file + "'") +
                     " is not a distillation run (it has no '" + train::kDistillSection +
                     "' section); run or resume it with `ganlite train`");
  }
  nlohmann::json rest = j;
  rest.erase(train::kDistillSection);
  DistillRunConfig c;
  c.train = train::TrainConfig::from_json(rest, file);
  c.distill = DistillConfig::from_json(*section, file);
  return c;
}

DistillRunConfig DistillRunConfig::load(const std::string& path) {
  return from_json(parse_config_json(read_file(path), path), path);
}

}  // namespace ganlite::compress
