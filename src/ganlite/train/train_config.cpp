#include "ganlite/train/train_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "ganlite/train/gan_loss.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

// One table drives both directions of the JSON round trip, so a new field cannot be forgotten in one.
template <typename Visitor>
void visit_fields(TrainConfig& c, Visitor&& v) {
  v("task", c.task);
  v("dataroot", c.dataroot);
  v("direction", c.direction);
  v("ndf", c.ndf);
  v("netD", c.netD);
  v("n_layers_D", c.n_layers_D);
  v("norm_D", c.norm_D);
  v("gan_mode", c.gan_mode);
  v("init_type", c.init_type);
  v("init_gain", c.init_gain);
  v("lambda_L1", c.lambda_L1);
  v("lambda_A", c.lambda_A);
  v("lambda_B", c.lambda_B);
  v("lambda_identity", c.lambda_identity);
  v("pool_size", c.pool_size);
  v("lr", c.lr);
  v("beta1", c.beta1);
  v("beta2", c.beta2);
  v("n_epochs", c.n_epochs);
  v("n_epochs_decay", c.n_epochs_decay);
  v("batch_size", c.batch_size);
  v("load_size", c.load_size);
  v("crop_size", c.crop_size);
  v("preprocess", c.preprocess);
  v("no_flip", c.no_flip);
  v("serial_batches", c.serial_batches);
  v("workers", c.workers);
  v("seed", c.seed);
  v("threads", c.threads);
  v("device", c.device);
  v("max_iters", c.max_iters);
  v("save_epoch_freq", c.save_epoch_freq);
  v("save_latest_freq", c.save_latest_freq);
  v("log_freq", c.log_freq);
  v("sample_freq", c.sample_freq);
  v("val_max_images", c.val_max_images);
  v("validate", c.validate);
}

}  // namespace

const std::vector<std::string>& valid_tasks() {
  static const std::vector<std::string> v{"pix2pix", "cyclegan"};
  return v;
}
const std::vector<std::string>& valid_net_ds() {
  static const std::vector<std::string> v{"basic", "n_layers", "pixel"};
  return v;
}
const std::vector<std::string>& valid_init_types() {
  static const std::vector<std::string> v{"normal", "xavier", "kaiming", "orthogonal"};
  return v;
}

TrainConfig TrainConfig::resolved() const {
  TrainConfig c = *this;
  if (c.ndf == 0) c.ndf = c.task == "pix2pix" ? 128 : 64;
  if (c.gan_mode == "auto") c.gan_mode = c.task == "pix2pix" ? "vanilla" : "lsgan";
  if (c.netD == "basic") c.n_layers_D = 3;
  return c;
}

void TrainConfig::validate_config() const {
  if (!contains(valid_tasks(), task)) throw_bad_choice("task", task, valid_tasks());
  require(!dataroot.empty(), "no dataset given (--data DIR)");
  if (!contains({"AtoB", "BtoA"}, direction)) throw_bad_choice("direction", direction, {"AtoB", "BtoA"});
  generator.validate();
  require(ndf > 0, "ndf must be positive, got " + std::to_string(ndf));
  if (!contains(valid_net_ds(), netD)) throw_bad_choice("netD", netD, valid_net_ds());
  require(n_layers_D >= 1, "n_layers_D must be >= 1, got " + std::to_string(n_layers_D));
  if (!contains(nn::valid_norms(), norm_D)) throw_bad_choice("norm_D", norm_D, nn::valid_norms());
  if (gan_mode != "auto" && !contains(valid_gan_modes(), gan_mode)) {
    auto valid = valid_gan_modes();
    valid.insert(valid.begin(), "auto");
    throw_bad_choice("gan_mode", gan_mode, valid);
  }
  if (!contains(valid_init_types(), init_type)) throw_bad_choice("init_type", init_type, valid_init_types());
  require(lr > 0, "lr must be positive, got " + std::to_string(lr));
  require(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "beta1 and beta2 must be in [0, 1)");
  require(lambda_L1 >= 0 && lambda_A >= 0 && lambda_B >= 0 && lambda_identity >= 0, "loss weights must be >= 0");
  require(pool_size >= 0, "pool_size must be >= 0, got " + std::to_string(pool_size));
  require(n_epochs >= 0 && n_epochs_decay >= 0 && n_epochs + n_epochs_decay > 0,
          "n_epochs + n_epochs_decay must be positive");
  require(batch_size >= 1, "batch_size must be >= 1, got " + std::to_string(batch_size));
  require(crop_size >= 1 && load_size >= 1, "load_size and crop_size must be positive");
  if (!contains({"resize_and_crop", "scale_width", "crop", "none"}, preprocess)) {
    throw_bad_choice("preprocess", preprocess, {"resize_and_crop", "scale_width", "crop", "none"});
  }
  require(workers >= 0, "workers must be >= 0");
  require(threads >= 0, "threads must be >= 0");
  require(max_iters >= 0, "max_iters must be >= 0");
  require(save_epoch_freq >= 0 && save_latest_freq >= 0 && log_freq >= 0 && sample_freq >= 0,
          "save/log/sample frequencies must be >= 0");
  require(val_max_images >= 0, "val_max_images must be >= 0");
}

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(const_cast<TrainConfig&>(*this), [&j](const char* key, auto& value) { j[key] = value; });
  j["generator"] = generator.to_json();
  if (!distill.empty()) j["distill"] = nlohmann::json::parse(distill);
  return j;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw UsageError("a training config must be a JSON object");
  TrainConfig c;
  std::set<std::string> known{"generator", "distill"};
  visit_fields(c, [&](const char* key, auto& value) {
    known.insert(key);
    const auto it = j.find(key);
    if (it == j.end()) return;
    try {
      it->get_to(value);
    } catch (const nlohmann::json::exception&) {
      throw UsageError(std::string("config key '") + key + "' has the wrong type: " + it->dump());
    }
  });
  for (const auto& item : j.items()) {
    if (!known.count(item.key())) throw UsageError("unknown config key '" + item.key() + "'");
  }
  if (j.contains("generator")) c.generator = nn::ArchConfig::from_json(j.at("generator"));
  if (j.contains("distill")) {
    if (!j.at("distill").is_object()) throw UsageError("config key 'distill' must be a JSON object");
    c.distill = j.at("distill").dump();
  }
  return c;
}

std::string TrainConfig::to_json_string(int indent) const { return to_json().dump(indent) + "\n"; }

TrainConfig TrainConfig::from_json_string(const std::string& text, const std::string& name_for_errors) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError("config '" + name_for_errors + "' is not valid JSON: " + e.what());
  }
  try {
    return from_json(j);
  } catch (const UsageError& e) {
    throw UsageError("config '" + name_for_errors + "': " + e.what());
  }
}

TrainConfig TrainConfig::load(const std::string& path) { return from_json_string(read_file(path), path); }

}  // namespace ganlite::train
