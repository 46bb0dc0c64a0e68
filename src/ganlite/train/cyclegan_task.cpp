#include "ganlite/train/cyclegan_task.h"

#include <torch/torch.h>

#include <filesystem>

#include "ganlite/train/distributed.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace {
std::vector<torch::Tensor> concat(std::vector<torch::Tensor> a, const std::vector<torch::Tensor>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Under data-parallel training the pool takes the global batch's fakes (gathered in rank order),
// so every rank's pool holds and draws exactly what one process with the global batch would
// (same seed, same images); each rank's D then judges its own slice of what the pool returns.
torch::Tensor query_pool(ImagePool& pool, const torch::Tensor& fakes) {
  Distributed* dist = Distributed::current();
  if (dist == nullptr || dist->size() == 1 || pool.capacity() == 0) return pool.query(fakes);
  const auto global = dist->all_gather_cat(fakes.detach().contiguous());
  const int64_t begin = global_batch_offset(*dist, fakes.size(0));
  return pool.query(global).narrow(0, begin, fakes.size(0));
}
}  // namespace

CycleGanTask::CycleGanTask(const TrainConfig& config, const torch::Device& device)
    : config_(config.resolved()),
      device_(device),
      precision_(config_.precision, device_),
      gan_loss_(config_.gan_mode),
      fake_a_pool_(config_.pool_size, config_.seed * 2 + 1),
      fake_b_pool_(config_.pool_size, config_.seed * 2 + 2) {
  generator_a_ = build_generator(config_, 3, 3, device_);
  generator_b_ = build_generator(config_, 3, 3, device_);
  discriminator_a_ = build_discriminator(config_, 3, device_);
  discriminator_b_ = build_discriminator(config_, 3, device_);
  const auto adam = torch::optim::AdamOptions(config_.lr).betas({config_.beta1, config_.beta2});
  optimizer_g_ = std::make_unique<torch::optim::Adam>(
      concat(generator_a_->parameters(), generator_b_->parameters()), adam);
  optimizer_d_ = std::make_unique<torch::optim::Adam>(
      concat(discriminator_a_->parameters(), discriminator_b_->parameters()), adam);
}

torch::Tensor CycleGanTask::discriminator_loss(nn::Discriminator& d, const torch::Tensor& real,
                                               const torch::Tensor& fake) {
  torch::Tensor loss_real, loss_fake;
  {
    const auto autocast = precision_.autocast();
    loss_real = gan_loss_(d->forward(real), true, true);
    loss_fake = gan_loss_(d->forward(fake.detach()), false, true);
  }
  const auto loss = (loss_real + loss_fake) * 0.5;
  precision_.scaler().scale(loss).backward();
  return loss;
}

Losses CycleGanTask::train_step(const data::Batch& batch) {
  const auto real_a = batch.a.to(device_);
  const auto real_b = batch.b.to(device_);
  // Forwards under autocast, generator outputs and losses in fp32, backward and steps outside
  // (mixed_precision.h); in fp32 the regions do nothing and the scaler just steps.
  auto& scaler = precision_.scaler();
  const auto autocast = [this] { return precision_.autocast(); };
  auto translate = [&](nn::Generator& g, const torch::Tensor& x) {
    const auto region = autocast();
    return to_fp32(g->forward(x));
  };
  const auto fake_b = translate(generator_a_, real_a);
  const auto rec_a = translate(generator_b_, fake_b);
  const auto fake_a = translate(generator_b_, real_b);
  const auto rec_b = translate(generator_a_, fake_a);

  // Generators, with both discriminators frozen.
  set_requires_grad(*discriminator_a_, false);
  set_requires_grad(*discriminator_b_, false);
  optimizer_g_->zero_grad();
  torch::Tensor loss_idt_a = torch::zeros({}, real_a.options());
  torch::Tensor loss_idt_b = torch::zeros({}, real_a.options());
  if (config_.lambda_identity > 0) {
    loss_idt_a = torch::l1_loss(translate(generator_a_, real_b), real_b) * config_.lambda_B * config_.lambda_identity;
    loss_idt_b = torch::l1_loss(translate(generator_b_, real_a), real_a) * config_.lambda_A * config_.lambda_identity;
  }
  torch::Tensor loss_g_a, loss_g_b;
  {
    const auto region = autocast();
    loss_g_a = gan_loss_(discriminator_a_->forward(fake_b), true, false);
    loss_g_b = gan_loss_(discriminator_b_->forward(fake_a), true, false);
  }
  const auto loss_cycle_a = torch::l1_loss(rec_a, real_a) * config_.lambda_A;
  const auto loss_cycle_b = torch::l1_loss(rec_b, real_b) * config_.lambda_B;
  const auto loss_g = loss_g_a + loss_g_b + loss_cycle_a + loss_cycle_b + loss_idt_a + loss_idt_b;
  scaler.scale(loss_g).backward();
  scaler.step(*optimizer_g_);

  // Discriminators, on fakes drawn from the history pools.
  set_requires_grad(*discriminator_a_, true);
  set_requires_grad(*discriminator_b_, true);
  optimizer_d_->zero_grad();
  // Each rank's loss is its samples' mean; the gradient averager weights it by the rank's share
  // of the global batch, so D's gradient is the global batch's mean, as with one process.
  const auto loss_d_a = discriminator_loss(discriminator_a_, real_b, query_pool(fake_b_pool_, fake_b));
  const auto loss_d_b = discriminator_loss(discriminator_b_, real_a, query_pool(fake_a_pool_, fake_a));
  scaler.step(*optimizer_d_);
  scaler.update();

  return {{"G_A", loss_g_a.item<double>()},       {"G_B", loss_g_b.item<double>()},
          {"cycle_A", loss_cycle_a.item<double>()}, {"cycle_B", loss_cycle_b.item<double>()},
          {"idt_A", loss_idt_a.item<double>()},     {"idt_B", loss_idt_b.item<double>()},
          {"D_A", loss_d_a.item<double>()},         {"D_B", loss_d_b.item<double>()}};
}

std::vector<std::pair<std::string, torch::nn::Module*>> CycleGanTask::modules() {
  return {{"G_A", generator_a_.get()},
          {"G_B", generator_b_.get()},
          {"D_A", discriminator_a_.get()},
          {"D_B", discriminator_b_.get()}};
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> CycleGanTask::optimizers() {
  return {{"G", optimizer_g_.get()}, {"D", optimizer_d_.get()}};
}

std::vector<std::pair<std::string, nn::Generator>> CycleGanTask::export_generators() {
  return {{"G_A", generator_a_}, {"G_B", generator_b_}};
}

void CycleGanTask::save_extra_state(NamedTensors& tensors, Metadata& metadata) const {
  fake_a_pool_.save_state("pool_fake_A", tensors, metadata);
  fake_b_pool_.save_state("pool_fake_B", tensors, metadata);
  precision_.scaler().save_state(metadata);
}

void CycleGanTask::load_extra_state(const NamedTensors& tensors, const Metadata& metadata) {
  fake_a_pool_.load_state("pool_fake_A", tensors, metadata, device_);
  fake_b_pool_.load_state("pool_fake_B", tensors, metadata, device_);
  precision_.scaler().load_state(metadata);
}

// The unaligned layout: <root>/trainA/, trainB/, testA/, testB/. Validation needs the true
// translations of the test inputs, <root>/testA_truth/ (testB_truth/ for BtoA; the synthetic
// datasets have them). CAT's CycleGAN recipes: ndf 64, LSGAN, affine InstanceNorm teachers.
TaskKind cyclegan_train_task() {
  namespace fs = std::filesystem;
  TaskKind k;
  k.name = kCycleGanTask;
  k.description = "unpaired translation A <-> B (trainA/, trainB/), two generators and two D's";
  k.paired = false;
  k.default_ndf = 64;
  k.default_gan_mode = "lsgan";
  k.scaled_norm = "instance_affine";
  k.open_train_set = [](const TrainConfig& c, const data::DatasetOptions& options) {
    return data::open_unaligned(c.dataroot, "train", options);
  };
  k.open_validation_set = [](const TrainConfig& c, const data::DatasetOptions& options,
                             std::string* why) -> std::optional<ValidationSet> {
    const fs::path root = c.dataroot;
    const std::string in = c.direction == "AtoB" ? "testA" : "testB";
    const fs::path truth = root / (in + "_truth");
    if (!fs::is_directory(root / in) || !fs::is_directory(truth)) {
      if (why) *why = "unpaired data has no '" + truth.string() + "' to compare against";
      return std::nullopt;
    }
    ValidationSet set{data::open_single(root / in, options), data::open_single(truth, options), in + "_truth"};
    if (set.inputs->size() != set.truths->size()) {
      throw Error("'" + (root / in).string() + "' has " + std::to_string(set.inputs->size()) + " images but '" +
                  truth.string() + "' has " + std::to_string(set.truths->size()));
    }
    return set;
  };
  k.open_train_targets = [](const TrainConfig& c, const data::DatasetOptions& options) {
    const std::string out = c.direction == "AtoB" ? "trainB" : "trainA";
    return TargetImages{data::open_single(fs::path(c.dataroot) / out, options), false};
  };
  k.make_task = [](const TrainConfig& c, const torch::Device& device) -> std::unique_ptr<TrainTask> {
    return std::make_unique<CycleGanTask>(c, device);
  };
  return k;
}

}  // namespace ganlite::train
