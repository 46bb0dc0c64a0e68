#include "ganlite/train/train_config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"

namespace ganlite::train {

namespace {

bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

constexpr double kHuge = std::numeric_limits<double>::max();
constexpr int kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

// One table drives both directions of the JSON round trip, so a new field cannot be forgotten in
// one. Numeric fields carry the bounds a config file is held to (util/json_read.h).
template <typename Visitor>
void visit_fields(TrainConfig& c, Visitor&& v) {
  v("task", c.task);
  v("dataroot", c.dataroot);
  v("direction", c.direction);
  v("ndf", c.ndf, 0, kMaxNdf);
  v("netD", c.netD);
  v("n_layers_D", c.n_layers_D, 1, kMaxLayersD);
  v("norm_D", c.norm_D);
  v("gan_mode", c.gan_mode);
  v("init_type", c.init_type);
  v("init_gain", c.init_gain, 0.0, kHuge);
  v("lambda_L1", c.lambda_L1, 0.0, kHuge);
  v("lambda_A", c.lambda_A, 0.0, kHuge);
  v("lambda_B", c.lambda_B, 0.0, kHuge);
  v("lambda_identity", c.lambda_identity, 0.0, kHuge);
  v("pool_size", c.pool_size, 0, kMaxPoolSize);
  v("lr", c.lr, 0.0, kHuge);
  v("beta1", c.beta1, 0.0, 1.0);
  v("beta2", c.beta2, 0.0, 1.0);
  v("n_epochs", c.n_epochs, 0, kMaxEpochs);
  v("n_epochs_decay", c.n_epochs_decay, 0, kMaxEpochs);
  v("batch_size", c.batch_size, 1, kMaxBatchSize);
  v("load_size", c.load_size, 1, kMaxImageSize);
  v("crop_size", c.crop_size, 1, kMaxImageSize);
  v("preprocess", c.preprocess);
  v("no_flip", c.no_flip);
  v("serial_batches", c.serial_batches);
  v("workers", c.workers, 0, kMaxWorkers);
  v("seed", c.seed);
  v("threads", c.threads, 0, kMaxThreads);
  v("device", c.device);
  v("max_iters", c.max_iters, 0, kMaxInt64);
  v("save_epoch_freq", c.save_epoch_freq, 0, kMaxInt);
  v("save_latest_freq", c.save_latest_freq, 0, kMaxInt64);
  v("log_freq", c.log_freq, 0, kMaxInt64);
  v("sample_freq", c.sample_freq, 0, kMaxInt64);
  v("val_max_images", c.val_max_images, 0, kMaxInt);
  v("validate", c.validate);
}

// The label-map tasks' fields (TrainConfig, "Semantic image synthesis"): read from any config,
// written only for those tasks.
template <typename Visitor>
void visit_label_map_fields(TrainConfig& c, Visitor&& v) {
  v("lambda_feat", c.lambda_feat, 0.0, kHuge);
  v("lambda_vgg", c.lambda_vgg, 0.0, kHuge);
  v("vgg_weights", c.vgg_weights);
  v("no_ttur", c.no_ttur);
  v("aspect_ratio", c.aspect_ratio, 1.0 / 64, 64.0);
  v("no_instance", c.no_instance);
}

bool is_label_map_task(const std::string& task) {
  const auto* kind = find_task_kind(task);
  return kind != nullptr && kind->label_maps;
}

// A generator whose norm is "auto" or not given keeps "auto" for resolved() to choose.
nn::ArchConfig generator_from_json(nlohmann::json g, const std::string& file) {
  const bool auto_norm = g.is_object() && (!g.contains("norm") || g["norm"] == kAutoNorm);
  if (auto_norm) g["norm"] = "instance";  // a placeholder for validation only
  nn::ArchConfig a = nn::ArchConfig::from_json(g, file, "generator.");
  if (auto_norm) a.norm = kAutoNorm;
  return a;
}

}  // namespace

const std::vector<std::string>& valid_tasks() { return task_names(); }
const std::vector<std::string>& valid_net_ds() { return nn::discriminator_kind_names(); }
const std::vector<std::string>& valid_init_types() {
  static const std::vector<std::string> v{"normal", "xavier", "kaiming", "orthogonal"};
  return v;
}

std::string default_generator_norm(const std::string& task, const std::string& arch) {
  if (nn::uses_scaled_norm_defaults(arch)) {  // the family's (nn/generator_family.h): CAT's teachers
    const auto* kind = find_task_kind(task);
    return kind ? kind->scaled_norm : "batch";
  }
  return "instance";
}

std::string default_discriminator_norm(const nn::ArchConfig& generator) {
  return nn::default_discriminator_norm_for(generator);
}

TrainConfig TrainConfig::resolved() const {
  TrainConfig c = *this;
  if (c.generator.norm == kAutoNorm) c.generator.norm = default_generator_norm(c.task, c.generator.arch);
  if (c.norm_D == kAutoNorm) c.norm_D = default_discriminator_norm(c.generator);
  // An unknown task or netD keeps its "auto" / 0 fields: validate_config() names the valid ones.
  if (const auto* task_defaults = find_task_kind(c.task)) {
    if (c.ndf == 0) c.ndf = task_defaults->default_ndf;
    if (c.gan_mode == "auto") c.gan_mode = task_defaults->default_gan_mode;
    if (c.netD == kAutoNorm) c.netD = task_defaults->default_net_d;
    if (task_defaults->generator_input_nc && (!task_defaults->label_maps || c.generator.label_nc > 0)) {
      c.generator.input_nc = task_defaults->generator_input_nc(c);
    }
    // A label-map generator records its training resolution (what profiles and pruning budgets
    // count at, as SPADE's crop_size / aspect_ratio).
    const bool sized = c.generator.input_height != 0 || c.generator.input_width != 0;
    if (task_defaults->label_maps && !sized && (c.preprocess == "fixed" || c.preprocess == "resize_and_crop") &&
        std::isfinite(c.aspect_ratio) && c.aspect_ratio > 0) {
      c.generator.input_width = c.crop_size;
      c.generator.input_height =
          c.preprocess == "fixed" ? std::max(1, static_cast<int>(std::lround(c.crop_size / c.aspect_ratio))) : c.crop_size;
    }
  }
  const auto* d_kind = nn::find_discriminator_kind(c.netD);
  if (d_kind && d_kind->fixed_n_layers > 0) c.n_layers_D = d_kind->fixed_n_layers;
  return c;
}

void TrainConfig::validate_config() const {
  if (!contains(valid_tasks(), task)) throw_bad_choice("task", task, valid_tasks());
  require(!dataroot.empty(), "no dataset given (--data DIR)");
  if (!contains({"AtoB", "BtoA"}, direction)) throw_bad_choice("direction", direction, {"AtoB", "BtoA"});
  generator.validate();
  require(ndf > 0 && ndf <= kMaxNdf, "ndf must be in [1, " + std::to_string(kMaxNdf) + "], got " + std::to_string(ndf));
  if (!contains(valid_net_ds(), netD)) throw_bad_choice("netD", netD, valid_net_ds());
  require(n_layers_D >= 1 && n_layers_D <= kMaxLayersD,
          "n_layers_D must be in [1, " + std::to_string(kMaxLayersD) + "], got " + std::to_string(n_layers_D));
  const bool label_maps = is_label_map_task(task);
  if (label_maps) {
    require(generator.label_nc >= 1, "task " + task + " needs the number of classes of its label maps (--label-nc N)");
    require(lambda_feat >= 0 && lambda_vgg >= 0, "lambda_feat and lambda_vgg must be >= 0");
    require(std::isfinite(aspect_ratio) && aspect_ratio >= 1.0 / 64 && aspect_ratio <= 64,
            "aspect_ratio must be in [1/64, 64], got " + std::to_string(aspect_ratio));
  }
  // A conditional D sees input and output together (the task says how wide that is).
  nn::DiscriminatorConfig d;
  d.arch = netD;
  d.input_nc = discriminator_input_nc(*this);
  d.ndf = ndf;
  d.n_layers = n_layers_D;
  const int64_t d_weights = d.conv_weight_count();
  require(d_weights <= nn::kMaxConvWeights, "the discriminator would have " + std::to_string(d_weights) +
                                                " convolution weights, more than the limit of " +
                                                std::to_string(nn::kMaxConvWeights) + ": ndf or n_layers_D is too large");
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
  require(pool_size >= 0 && pool_size <= kMaxPoolSize,
          "pool_size must be in [0, " + std::to_string(kMaxPoolSize) + "], got " + std::to_string(pool_size));
  require(n_epochs >= 0 && n_epochs_decay >= 0 && n_epochs + n_epochs_decay > 0,
          "n_epochs + n_epochs_decay must be positive");
  require(n_epochs <= kMaxEpochs && n_epochs_decay <= kMaxEpochs,
          "n_epochs and n_epochs_decay must be at most " + std::to_string(kMaxEpochs));
  require(batch_size >= 1 && batch_size <= kMaxBatchSize, "batch_size must be in [1, " +
                                                              std::to_string(kMaxBatchSize) + "], got " +
                                                              std::to_string(batch_size));
  require(crop_size >= 1 && load_size >= 1 && crop_size <= kMaxImageSize && load_size <= kMaxImageSize,
          "load_size and crop_size must be in [1, " + std::to_string(kMaxImageSize) + "], got " +
              std::to_string(load_size) + " and " + std::to_string(crop_size));
  const std::vector<std::string> preprocesses = label_maps ? std::vector<std::string>{"fixed", "resize_and_crop", "none"}
                                                           : std::vector<std::string>{"resize_and_crop", "scale_width", "crop", "none"};
  if (!contains(preprocesses, preprocess)) throw_bad_choice("preprocess", preprocess, preprocesses);
  require(workers >= 0 && workers <= kMaxWorkers, "workers must be in [0, " + std::to_string(kMaxWorkers) + "]");
  require(threads >= 0 && threads <= kMaxThreads, "threads must be in [0, " + std::to_string(kMaxThreads) + "]");
  require(max_iters >= 0, "max_iters must be >= 0");
  require(save_epoch_freq >= 0 && save_latest_freq >= 0 && log_freq >= 0 && sample_freq >= 0,
          "save/log/sample frequencies must be >= 0");
  require(val_max_images >= 0, "val_max_images must be >= 0");
  (void)parse_train_precision(precision);  // names the valid ones; the device is checked by the task
}

nlohmann::json TrainConfig::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  visit_fields(const_cast<TrainConfig&>(*this), [&j](const char* key, auto& value, auto...) { j[key] = value; });
  if (is_label_map_task(task)) {
    visit_label_map_fields(const_cast<TrainConfig&>(*this), [&j](const char* key, auto& value, auto...) { j[key] = value; });
  }
  if (precision != kDefaultPrecision) j["precision"] = precision;
  if (!tensorboard) j["tensorboard"] = false;
  j["generator"] = generator.to_json();
  return j;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j, const std::string& file) {
  const JsonFields f(j, file);
  if (f.find(kDistillSection)) {
    throw UsageError((file.empty() ? "" : file + ": ") +
                     "this config describes a distillation run (it has a '" + kDistillSection +
                     "' section): run or resume it with `ganlite distill`");
  }
  TrainConfig c;
  std::set<std::string> known{"generator"};
  const auto read = [&](const char* key, auto& value, auto... bounds) {
    known.insert(key);
    f.get(key, value, bounds...);
  };
  visit_fields(c, read);
  visit_label_map_fields(c, read);
  read("precision", c.precision);
  read("tensorboard", c.tensorboard);
  f.refuse_unknown(known);
  if (const auto* generator = f.find("generator")) c.generator = generator_from_json(*generator, file);
  return c;
}

std::string config_file_text(const nlohmann::json& j, int indent) { return j.dump(indent) + "\n"; }

std::string TrainConfig::to_json_string(int indent) const { return config_file_text(to_json(), indent); }

TrainConfig TrainConfig::from_json_string(const std::string& text, const std::string& name_for_errors) {
  return from_json(parse_config_json(text, name_for_errors), name_for_errors);
}

TrainConfig TrainConfig::load(const std::string& path) { return from_json_string(read_file(path), path); }

}  // namespace ganlite::train
