// Every hyper-parameter of a training run, with a JSON round trip: RUN_DIR/config.json holds the
// effective config, so `ganlite train --config RUN_DIR/config.json` reproduces a run.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::train {

// Upper bounds on a run's sizes, generous for real use (the papers train 256x256 crops, batch
// 1-80, ndf 64-128, pools of 50): a config asking for more is refused naming the field. The
// generator's bounds are in nn/arch_config.h.
inline constexpr int kMaxImageSize = 8192;  // load_size, crop_size
inline constexpr int kMaxBatchSize = 1024;
inline constexpr int kMaxNdf = 1024;
inline constexpr int kMaxLayersD = 13;      // stride-2 convs: 2^13 = 8192
inline constexpr int kMaxPoolSize = 1000;   // images kept in memory by the CycleGAN pool
inline constexpr int kMaxEpochs = 1000000;
inline constexpr int kMaxWorkers = 256;
inline constexpr int kMaxThreads = 1024;

// A norm left for resolved() to choose from the task and architecture (see default_*_norm below).
inline constexpr const char* kAutoNorm = "auto";

inline nn::ArchConfig generator_with_auto_norm() {
  nn::ArchConfig a;
  a.norm = kAutoNorm;
  return a;
}

struct TrainConfig {
  std::string task = "pix2pix";  // a registered task (task_registry.h): pix2pix | cyclegan
  std::string dataroot;          // pix2pix: train/ and test/ of A|B images; cyclegan: trainA/ trainB/ testA/ ...
  std::string direction = "AtoB";

  // The generator(s); input_nc/output_nc follow the images (3). Norm "auto" until resolved().
  nn::ArchConfig generator = generator_with_auto_norm();
  int ndf = 0;                   // 0: CAT's default (128 for pix2pix, 64 for cyclegan)
  std::string netD = kAutoNorm;  // a registered kind (nn/discriminator_registry.h); auto: the task's (basic, spade: multiscale)
  int n_layers_D = 3;
  std::string norm_D = kAutoNorm;  // auto: default_discriminator_norm(generator)
  std::string gan_mode = "auto";  // auto (pix2pix: vanilla, cyclegan: lsgan) | lsgan | vanilla | hinge
  std::string init_type = "normal";
  double init_gain = 0.02;

  double lambda_L1 = 100.0;       // pix2pix
  double lambda_A = 10.0;         // cyclegan cycle A -> B -> A
  double lambda_B = 10.0;         // cyclegan cycle B -> A -> B
  double lambda_identity = 0.5;
  int pool_size = 50;

  // Semantic image synthesis (label-map tasks: `--task spade`; the classes are generator.label_nc).
  // Written to config.json only for those tasks, so other runs' configs are as before.
  double lambda_feat = 10.0;      // GAN feature matching over the D's features (SPADE's lambda_feat)
  double lambda_vgg = 10.0;       // VGG19 perceptual loss, when vgg_weights is given
  std::string vgg_weights;        // torchvision vgg19 state dict; empty: no VGG term (said once)
  bool no_ttur = false;           // false: TTUR, G lr / 2, D lr * 2, Adam betas (0, 0.9), as SPADE
  double aspect_ratio = 1.0;      // preprocess fixed: crop_size wide, crop_size / aspect_ratio high
  bool no_instance = false;       // ignore instance maps: the edge channel follows the class map

  double lr = 2e-4;
  double beta1 = 0.5;
  double beta2 = 0.999;
  int n_epochs = 100;             // epochs at the initial lr
  int n_epochs_decay = 100;       // epochs of linear decay to 0

  int batch_size = 1;
  int load_size = 286;
  int crop_size = 256;
  std::string preprocess = "resize_and_crop";  // label-map tasks also: fixed (as SPADE's cityscapes)
  bool no_flip = false;
  bool serial_batches = false;    // cyclegan: pair A[i] with B[i]
  int workers = 2;

  uint64_t seed = 0;
  int threads = 0;                // 0: one per core
  std::string device = "cpu";
  // fp32 | bf16 | fp16 (train/mixed_precision.h). Written to config.json only when not fp32, so
  // fp32 runs' configs are as before; a config without it reads as fp32.
  std::string precision = "fp32";

  int64_t max_iters = 0;          // stop after this many iterations in total (0: train all epochs)
  int save_epoch_freq = 5;        // epoch checkpoints every K epochs (0: never)
  int64_t save_latest_freq = 1000;  // latest checkpoint every N iterations (0: only at epoch ends)
  int64_t log_freq = 10;          // metrics.jsonl line every N iterations
  int64_t sample_freq = 500;      // sample grid every N iterations (0: never)
  int val_max_images = 0;         // validation images per epoch (0: the whole test split)
  bool validate = true;
  // TensorBoard event files beside metrics.jsonl (util/tensorboard.h). Written to config.json only
  // when off, so other runs' configs are as before; a config without it reads as on.
  bool tensorboard = true;

  // Fills the "auto" / 0 defaults for the task; call before use. Idempotent.
  TrainConfig resolved() const;
  // Throws UsageError naming the bad field and, for choices, the valid values.
  void validate_config() const;
  int total_epochs() const { return n_epochs + n_epochs_decay; }

  nlohmann::json to_json() const;
  // Strict: an unknown key throws UsageError naming it (catches typos in hand-written configs).
  // Numbers must fit their field and its bounds (util/json_read.h); `file` names the source.
  // A distillation run's config (one with a "distill" section, compress/distill_config.h) is
  // refused: it is read as a whole by compress::DistillRunConfig, and run by `ganlite distill`.
  static TrainConfig from_json(const nlohmann::json& j, const std::string& file = "");
  std::string to_json_string(int indent = 2) const;
  static TrainConfig from_json_string(const std::string& text, const std::string& name_for_errors);
  static TrainConfig load(const std::string& path);
};

// The text of a config file such as RUN_DIR/config.json: `j` indented, ending in a newline.
std::string config_file_text(const nlohmann::json& j, int indent = 2);

// The key of a distillation run's own settings in its config.json (compress/distill_config.h).
inline constexpr const char* kDistillSection = "distill";

const std::vector<std::string>& valid_tasks();
const std::vector<std::string>& valid_net_ds();
const std::vector<std::string>& valid_init_types();

// The generator norm when none is given. CAT's inception teachers (methods.md 1.3) use BatchNorm
// for pix2pix and affine InstanceNorm for CycleGAN: the norm scales are what CAT's pruning ranks.
// Other architectures: InstanceNorm, as methods.md 1.1.
std::string default_generator_norm(const std::string& task, const std::string& arch);
// The discriminator norm when none is given. With an inception generator, CAT's recipes give D
// the generator's norm made affine (--norm_affine_D): batch, or instance_affine. Otherwise
// InstanceNorm without affine, as the generator of methods.md 1.1.
std::string default_discriminator_norm(const nn::ArchConfig& generator);

}  // namespace ganlite::train
