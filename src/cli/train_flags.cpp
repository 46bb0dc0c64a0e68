#include "train_flags.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {
namespace {

using train::TrainConfig;

// An option whose value overrides the config only when given on the command line.
template <typename T>
void add_override(CLI::App* cmd, TrainFlags& s, const std::string& flags, const std::string& help,
                  std::function<void(TrainConfig&, const T&)> set, bool allowed_on_resume = false) {
  auto value = std::make_shared<T>();
  auto* option = cmd->add_option(flags, *value, help);
  s.overrides.push_back({option, [value, set](TrainConfig& c) { set(c, *value); }, allowed_on_resume});
}

void add_switch(CLI::App* cmd, TrainFlags& s, const std::string& flags, const std::string& help,
                std::function<void(TrainConfig&)> set) {
  auto* option = cmd->add_flag(flags, help);
  s.overrides.push_back({option, std::move(set), false});
}

// Checked against the file's tensors before anything is built (io::read_generator_arch).
nn::ArchConfig arch_of_generator_file(const std::string& path) {
  try {
    return io::read_generator_arch(path);
  } catch (const Error& e) {
    throw Error(std::string("--arch-from: ") + e.what());
  }
}

#define GANLITE_FIELD(type, member) [](TrainConfig& c, const type& v) { c.member = v; }

}  // namespace

void add_train_flags(CLI::App* cmd, TrainFlags& st, const TrainFlagGroups& groups) {
  add_override<std::string>(cmd, st, "--task", join_names(train::task_names(), " | "), GANLITE_FIELD(std::string, task));
  add_override<std::string>(cmd, st, "--data", "Dataset root (public pix2pix / CycleGAN layout)", GANLITE_FIELD(std::string, dataroot));
  add_override<std::string>(cmd, st, "--direction", "AtoB | BtoA", GANLITE_FIELD(std::string, direction));
  if (groups.generator) {
    add_override<std::string>(cmd, st, "--arch", "Generator: " + join_names(nn::generator_family_names(), " | "), GANLITE_FIELD(std::string, generator.arch));
    add_override<int>(cmd, st, "--ngf", "Generator base width (default 64)", GANLITE_FIELD(int, generator.ngf));
    add_override<int>(cmd, st, "--n-blocks", "Residual blocks (default 9)", GANLITE_FIELD(int, generator.n_blocks));
    add_override<int>(cmd, st, "--num-downs", "UNet depth (8 = unet_256, 7 = unet_128)", GANLITE_FIELD(int, generator.num_downs));
    add_override<std::string>(cmd, st, "--norm",
                              "Generator norm: instance | instance_affine | batch | none (default: inception as CAT, "
                              "batch for pix2pix and instance_affine for cyclegan; other archs instance)",
                              GANLITE_FIELD(std::string, generator.norm));
    add_override<std::string>(cmd, st, "--padding", "reflect | replicate | zero", GANLITE_FIELD(std::string, generator.padding));
    add_override<double>(cmd, st, "--dropout", "Generator dropout", GANLITE_FIELD(double, generator.dropout));
    add_override<std::string>(cmd, st, "--arch-from",
                              "Take the generator architecture, pruned widths included, from this generator file "
                              "(weights are freshly initialised): trains a student from scratch",
                              [](TrainConfig& c, const std::string& path) { c.generator = arch_of_generator_file(path); });
    add_override<int>(cmd, st, "--label-nc",
                      "Label-map tasks (--task spade): classes of the label maps (cityscapes 35); the generator "
                      "takes label_nc + 1 channels (one-hot plus instance edges)",
                      GANLITE_FIELD(int, generator.label_nc));
    add_switch(cmd, st, "--spectral-norm-G",
               "--arch spade: train the block convs with spectral norm (NVlabs' norm_G spectralspadesyncbatch3x3); "
               "checkpoints keep weight_orig/u/v, generator files load folded for inference",
               [](TrainConfig& c) { c.generator.spectral_norm = true; });
  }
  add_override<int>(cmd, st, "--ndf", "Discriminator width (default: 128 pix2pix, 64 cyclegan and spade)", GANLITE_FIELD(int, ndf));
  add_override<std::string>(cmd, st, "--netD", join_names(nn::discriminator_kind_names(), " | "), GANLITE_FIELD(std::string, netD));
  add_override<int>(cmd, st, "--n-layers-D", "PatchGAN layers for --netD n_layers", GANLITE_FIELD(int, n_layers_D));
  add_override<std::string>(cmd, st, "--norm-D",
                            "Discriminator norm (default: with an inception generator its norm made affine, as CAT's "
                            "--norm_affine_D; otherwise instance)",
                            GANLITE_FIELD(std::string, norm_D));
  add_override<std::string>(cmd, st, "--gan-mode", "auto | lsgan | vanilla | hinge", GANLITE_FIELD(std::string, gan_mode));
  add_override<std::string>(cmd, st, "--init-type", "normal | xavier | kaiming | orthogonal", GANLITE_FIELD(std::string, init_type));
  add_override<double>(cmd, st, "--init-gain", "Init scale (default 0.02)", GANLITE_FIELD(double, init_gain));
  if (groups.task_losses) {
    add_override<double>(cmd, st, "--lambda-L1", "pix2pix L1 weight (default 100)", GANLITE_FIELD(double, lambda_L1));
    add_override<double>(cmd, st, "--lambda-A", "CycleGAN cycle weight A->B->A (default 10)", GANLITE_FIELD(double, lambda_A));
    add_override<double>(cmd, st, "--lambda-B", "CycleGAN cycle weight B->A->B (default 10)", GANLITE_FIELD(double, lambda_B));
    add_override<double>(cmd, st, "--lambda-identity", "CycleGAN identity weight (default 0.5)", GANLITE_FIELD(double, lambda_identity));
    add_override<int>(cmd, st, "--pool-size", "CycleGAN history pool (default 50)", GANLITE_FIELD(int, pool_size));
    add_override<double>(cmd, st, "--lambda-feat", "spade: GAN feature matching weight (default 10)", GANLITE_FIELD(double, lambda_feat));
    add_override<double>(cmd, st, "--lambda-vgg", "spade: VGG19 perceptual weight (default 10)", GANLITE_FIELD(double, lambda_vgg));
    add_override<std::string>(cmd, st, "--vgg-weights",
                              "spade: torchvision vgg19 state dict (.pth) for the VGG19 perceptual loss; without it the "
                              "term is off",
                              GANLITE_FIELD(std::string, vgg_weights));
  }
  // Also `distill`: a spade student's optimisers follow it as the teacher's do (CAT's spade distiller).
  add_switch(cmd, st, "--no-ttur", "spade: one lr and --beta1/--beta2 for G and D (default TTUR: G lr/2, D lr*2, betas 0, 0.9)",
             [](TrainConfig& c) { c.no_ttur = true; });
  add_override<double>(cmd, st, "--aspect-ratio", "Label-map tasks, --preprocess fixed: width / height (cityscapes 2)",
                       GANLITE_FIELD(double, aspect_ratio));
  add_switch(cmd, st, "--no-instance", "Label-map tasks: ignore instance maps (the edge channel follows the class map)",
             [](TrainConfig& c) { c.no_instance = true; });
  add_override<double>(cmd, st, "--lr", "Adam learning rate (default 2e-4)", GANLITE_FIELD(double, lr));
  add_override<double>(cmd, st, "--beta1", "Adam beta1 (default 0.5)", GANLITE_FIELD(double, beta1));
  add_override<double>(cmd, st, "--beta2", "Adam beta2 (default 0.999)", GANLITE_FIELD(double, beta2));
  add_override<int>(cmd, st, "--n-epochs", "Epochs at the initial lr (default 100)", GANLITE_FIELD(int, n_epochs));
  add_override<int>(cmd, st, "--n-epochs-decay", "Epochs of linear decay to 0 (default 100)", GANLITE_FIELD(int, n_epochs_decay));
  add_override<int>(cmd, st, "--batch-size", "Batch size (default 1)", GANLITE_FIELD(int, batch_size));
  add_override<int>(cmd, st, "--load-size", "Resize to this before cropping (default 286)", GANLITE_FIELD(int, load_size));
  add_override<int>(cmd, st, "--crop-size", "Random crop size (default 256)", GANLITE_FIELD(int, crop_size));
  add_override<std::string>(cmd, st, "--preprocess", "resize_and_crop | scale_width | crop | none (label maps: fixed | resize_and_crop | none)", GANLITE_FIELD(std::string, preprocess));
  add_switch(cmd, st, "--no-flip", "No random horizontal flip", [](TrainConfig& c) { c.no_flip = true; });
  add_switch(cmd, st, "--serial-batches", "CycleGAN: pair A[i] with B[i]", [](TrainConfig& c) { c.serial_batches = true; });
  add_switch(cmd, st, "--no-validate", "No per-epoch validation", [](TrainConfig& c) { c.validate = false; });
  {  // A log, not a training setting: it may change when resuming, as --log-freq.
    auto on = std::make_shared<bool>(true);
    auto* option = cmd->add_flag("--tensorboard,!--no-tensorboard", *on,
                                 "TensorBoard event files beside metrics.jsonl (default on; --no-tensorboard: none)");
    st.overrides.push_back({option, [on](TrainConfig& c) { c.tensorboard = *on; }, true});
  }
  add_override<uint64_t>(cmd, st, "--seed", "Seed of init, data order and pools (default 0)", GANLITE_FIELD(uint64_t, seed));
  add_override<std::string>(cmd, st, "--device", "Device for every tensor: cpu, cuda, cuda:N", GANLITE_FIELD(std::string, device), true);
  add_override<std::string>(cmd, st, "--precision",
                            "fp32 | bf16 | fp16: mixed precision through autocast, fp32 master weights (bf16: CUDA or a "
                            "CPU with native bf16; fp16: CUDA, with dynamic loss scaling; default fp32)",
                            GANLITE_FIELD(std::string, precision));
  add_override<int>(cmd, st, "--threads", "CPU threads for LibTorch (0 = one per core)", GANLITE_FIELD(int, threads), true);
  add_override<int>(cmd, st, "--workers", "Data loading threads (default 2)", GANLITE_FIELD(int, workers), true);
  add_override<int64_t>(cmd, st, "--max-iters", "Stop after N iterations in total (0 = all epochs)", GANLITE_FIELD(int64_t, max_iters), true);
  add_override<int>(cmd, st, "--save-epoch-freq", "Generator files every K epochs (default 5)", GANLITE_FIELD(int, save_epoch_freq));
  add_override<int64_t>(cmd, st, "--save-latest-freq", "Latest checkpoint every N iterations (default 1000)", GANLITE_FIELD(int64_t, save_latest_freq), true);
  add_override<int64_t>(cmd, st, "--log-freq", "metrics.jsonl line every N iterations (default 10)", GANLITE_FIELD(int64_t, log_freq), true);
  add_override<int64_t>(cmd, st, "--sample-freq", "Sample grid every N iterations (default 500, 0 = never)", GANLITE_FIELD(int64_t, sample_freq), true);
  add_override<int>(cmd, st, "--val-max-images", "Validation images per epoch (0 = all)", GANLITE_FIELD(int, val_max_images), true);
}

#undef GANLITE_FIELD

void apply_train_flags(const TrainFlags& flags, TrainConfig& config, bool resume) {
  for (const auto& o : flags.overrides) {
    if (o.option->count() == 0) continue;
    if (resume && !o.allowed_on_resume) {
      throw UsageError(o.option->get_name() + " cannot change when resuming (the run keeps its config; "
                       "allowed: --device, --threads, --max-iters, --workers, --save-latest-freq, --log-freq, "
                       "--sample-freq, --val-max-images, --tensorboard)");
    }
    o.apply(config);
  }
}

bool train_flag_given(const TrainFlags& flags, const std::string& name) {
  for (const auto& o : flags.overrides) {
    if (o.option->check_name(name)) return o.option->count() > 0;
  }
  return false;
}

nlohmann::json train_summary(const train::TrainResult& result, const TrainConfig& config,
                             const std::filesystem::path& run_dir) {
  nlohmann::json losses = nlohmann::json::object();
  for (const auto& [name, value] : result.final_losses) losses[name] = value;
  std::vector<std::string> generators;
  for (const auto& p : result.generator_files) generators.push_back(p.string());
  nlohmann::json summary{{"task", config.task},
                         {"run_dir", run_dir.string()},
                         {"iterations", result.iterations},
                         {"global_step", result.progress.global_step},
                         {"epoch", result.progress.epoch},
                         {"finished", result.finished},
                         {"wall_seconds", result.progress.wall_seconds},
                         {"final_losses", losses},
                         {"latest_checkpoint", result.latest_checkpoint.string()},
                         {"generators", generators}};
  if (result.progress.best_epoch >= 0) {
    summary["best_psnr"] = result.progress.best_psnr;
    summary["best_epoch"] = result.progress.best_epoch;
    summary["best_generator"] = result.best_generator.string();
  }
  return summary;
}

void print_train_summary(const train::TrainResult& result) {
  std::cout << "trained " << result.iterations << " iterations (step " << result.progress.global_step << ", "
            << format_duration(result.progress.wall_seconds) << " in total)\n";
  for (const auto& [name, value] : result.final_losses) std::cout << "  " << name << " " << value << "\n";
  if (result.progress.best_epoch >= 0) {
    std::cout << "best validation PSNR " << result.progress.best_psnr << " dB at epoch " << result.progress.best_epoch
              << ": " << result.best_generator.string() << "\n";
  }
}

}  // namespace ganlite::cli
