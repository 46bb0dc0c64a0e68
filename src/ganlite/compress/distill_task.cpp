#include "ganlite/compress/distill_task.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "ganlite/compress/discriminator_prune.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/train/distributed.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

// The D norm when none is given: the norm of a D restored from a file (--restore-d, else one a
// method restores, e.g. --dcd-restore-teacher-d: both D's share it), else the student's default
// (a CAT student keeps its teacher's norm; CAT's recipes give D that norm, affine).
std::string default_distill_d_norm(const DistillConfig& d, const nn::ArchConfig& student) {
  std::vector<std::pair<std::string, std::string>> files{{d.restore_d, "--restore-d"}};
  for (const auto& name : d.methods) {
    const auto& m = distill_method(name);
    if (!m.restored_discriminators) continue;
    for (auto& f : m.restored_discriminators(d.options(name))) files.push_back(std::move(f));
  }
  for (const auto& [path, flag] : files) {
    if (path.empty()) continue;
    const auto meta = discriminator_file_metadata(path, flag);
    if (const auto it = meta.find("norm"); it != meta.end()) return it->second;
  }
  return train::default_discriminator_norm(student);
}

}  // namespace

io::Metadata discriminator_file_metadata(const std::string& path, const std::string& flag) {
  const auto meta = io::read_safetensors_header(path).metadata;
  const auto kind = meta.find(io::kMetaKind);
  if (kind != meta.end() && kind->second != "discriminator") {
    throw Error(flag + " " + path + ": holds a " + kind->second + ", not a discriminator");
  }
  return meta;
}

DistillRunConfig make_distill_run_config(const train::TrainConfig& base, const DistillConfig& distill) {
  train::TrainConfig config = base.resolved();
  DistillConfig d = distill.resolved(config.task);
  d.validate(config.batch_size);
  // The run's ndf (--ndf, or adopted from --restore-d) is the teacher run's D width: the default
  // of D's a method trains (DCD's teacher D), and the width a pruned student D starts from.
  for (const auto& name : d.methods) {
    const auto& m = distill_method(name);
    if (m.adopt_run_settings) m.adopt_run_settings(d.options(name), config);
  }
  if (d.prune_d_ratio > 0) {
    if (d.student_ndf > 0) throw UsageError("give either --student-ndf or --prune-d-ratio, not both");
    d.student_ndf = std::max(1, static_cast<int>(std::lround(config.ndf * (1.0 - d.prune_d_ratio))));
  }
  if (d.student_ndf > 0) config.ndf = d.student_ndf;
  config.generator = io::read_generator_arch(d.student);  // checked against its tensors first
  if (base.norm_D == train::kAutoNorm) config.norm_D = default_distill_d_norm(d, config.generator);
  config.validate_config();
  return {config, d};
}

std::vector<int64_t> tap_channels(nn::GeneratorImpl& generator, int64_t size, const torch::Device& device) {
  const bool was_training = generator.is_training();
  generator.eval();
  std::vector<int64_t> channels;
  {
    torch::NoGradGuard no_grad;
    // The probe takes the generator's dtype (float64 in the step-parity tests, tests/parity).
    const auto params = generator.parameters();
    const auto dtype = params.empty() ? torch::kFloat32 : params.front().scalar_type();
    const auto out = generator.forward_with_taps(torch::zeros({1, generator.config().input_nc, size, size},
                                                              torch::TensorOptions().device(device).dtype(dtype)));
    for (const auto& t : out.taps) channels.push_back(t.size(1));
  }
  generator.train(was_training);
  return channels;
}

DistillTask::DistillTask(const DistillRunConfig& config, const torch::Device& device, bool fresh_start)
    : config_(config.train.resolved()),
      distill_(config.distill.resolved(config_.task)),
      device_(device),
      precision_(config_.precision, device_),
      paired_(train::task_kind(config_.task).paired),
      gan_loss_(config_.gan_mode),
      update_order_(run_update_order(distill_.methods)) {
  distill_.validate(config_.batch_size);
  if (distill_.online()) train::require_fp32_precision(config_.precision, "--online-teacher");
  if (train::task_kind(config_.task).label_maps) train::require_fp32_precision(config_.precision, "--task " + config_.task);

  if (distill_.online()) {
    if (train::Distributed::current()) {
      throw UsageError("--online-teacher runs in one process (its teacher skips steps, which the data-parallel "
                       "gradient averaging does not allow): drop --nproc");
    }
    online_ = std::make_unique<OnlineTeacher>(config_, distill_, device_);  // seeded init, before any term
    teacher_ = online_->generator();
  } else {
    teacher_ = io::load_generator(distill_.teacher, device_);
    teacher_->eval();
    train::set_requires_grad(*teacher_, false);
  }
  student_ = io::load_generator(distill_.student, device_);
  student_->train();

  // One probe forward of each: tap counts, widths and sizes must line up before training starts.
  const int64_t probe = config_.crop_size;
  DistillContext context;
  context.task = config_.task;
  context.device = device_;
  context.student_tap_channels = tap_channels(*student_, probe, device_);
  context.teacher_tap_channels = tap_channels(*teacher_, probe, device_);
  context.config = &distill_;
  const std::string teacher_name = online_ ? "--online-teacher " + distill_.online_teacher : "'" + distill_.teacher + "'";
  if (context.student_tap_channels.size() != context.teacher_tap_channels.size()) {
    throw Error("student '" + distill_.student + "' has " + std::to_string(context.student_tap_channels.size()) +
                " distillation taps but teacher " + teacher_name + " has " +
                std::to_string(context.teacher_tap_channels.size()));
  }

  const int d_input_nc = train::discriminator_input_nc(config_);
  if (train::task_kind(config_.task).label_maps) spade_ = std::make_unique<train::SpadeObjective>(config_, device_);
  if (!online_) build_student_discriminator(fresh_start, d_input_nc);
  context.run = &config_;
  context.d_input_nc = d_input_nc;
  context.fresh_start = fresh_start;
  context.gan_mode = config_.gan_mode;
  context.lr = config_.lr;
  context.beta1 = config_.beta1;
  context.beta2 = config_.beta2;
  if (online_) {
    context.teacher_discriminator = online_->discriminator();
    context.online_teacher = true;
  }
  // Networks the terms own are built (seeded) before any term, in method order.
  for (const auto& name : distill_.methods) {
    const auto& m = distill_method(name);
    if (m.prepare) m.prepare(context, distill_.options(name));
  }

  std::vector<torch::Tensor> g_params = student_->parameters();
  for (const auto& method : distill_.methods) {
    auto term = make_distill_term(method, context);
    for (const auto& p : term->parameters()) g_params.push_back(p);
    terms_.push_back(std::move(term));
  }
  const bool ttur = spade_ && !config_.no_ttur;  // SPADE's TTUR betas (0, 0.9); lr_factor scales the lr
  const auto adam = torch::optim::AdamOptions(config_.lr).betas({ttur ? 0.0 : config_.beta1, ttur ? 0.9 : config_.beta2});
  optimizer_g_ = std::make_unique<torch::optim::Adam>(g_params, adam);
  if (discriminator_) optimizer_d_ = std::make_unique<torch::optim::Adam>(discriminator_->parameters(), adam);
}

double DistillTask::lr_factor(const std::string& optimizer) const {
  if (!spade_ || config_.no_ttur) return 1.0;
  if (optimizer == "G") return 0.5;
  return optimizer == "D" ? 2.0 : 1.0;
}

void DistillTask::build_student_discriminator(bool fresh_start, int d_input_nc) {
  discriminator_ = train::build_discriminator(config_, d_input_nc, device_);
  if (!fresh_start || distill_.restore_d.empty()) return;
  const auto meta = discriminator_file_metadata(distill_.restore_d, "--restore-d");
  if (distill_.prune_d_ratio > 0) {
    // The trained D at its own width, then narrowed to the student's.
    auto source = train::discriminator_config_of(config_, d_input_nc);
    if (!meta.count("ndf")) throw Error("--restore-d " + distill_.restore_d + ": no 'ndf' in its metadata to prune from");
    source.ndf = static_cast<int>(io::metadata_integer(meta, "ndf", distill_.restore_d, 1, train::kMaxNdf));
    auto trained = nn::make_discriminator(source);
    trained->to(device_);
    try {
      io::load_module(distill_.restore_d, *trained, device_);
    } catch (const Error& e) {
      throw Error(std::string("--restore-d: ") + e.what() +
                  " (the discriminator must match --netD, --n-layers-D, --norm-D and the task)");
    }
    discriminator_ = prune_discriminator(*trained, source, config_.ndf);
    return;
  }
  try {
    io::load_module(distill_.restore_d, *discriminator_, device_);
  } catch (const Error& e) {
    throw Error(std::string("--restore-d: ") + e.what() + " (the student's D has ndf " + std::to_string(config_.ndf) +
                "; it must match --ndf / --student-ndf, --netD, --n-layers-D, --norm-D and the task: "
                "conditional 6-channel D for pix2pix, 3-channel for cyclegan; --prune-d-ratio narrows a "
                "trained D instead)");
  }
}

void DistillTask::add_term_losses(const DistillInputs& inputs, torch::Tensor& loss_g, train::Losses& losses) {
  for (auto& term : terms_) {
    const auto l = term->loss(inputs) * distill_.weights.at(term->method());
    loss_g = loss_g + l;
    losses.emplace_back("G_" + term->method(), l.item<double>());
    for (auto& [name, extra_loss] : term->extra_generator_losses(inputs)) {
      loss_g = loss_g + extra_loss;
      losses.emplace_back(name, extra_loss.item<double>());
    }
  }
}

namespace {
// A forward's image and taps in fp32 for the losses and terms (the same tensors in fp32 runs).
nn::GeneratorOutput distill_output_in_fp32(nn::GeneratorOutput out) {
  out.image = train::to_fp32(out.image);
  for (auto& tap : out.taps) tap = train::to_fp32(tap);
  return out;
}
}  // namespace

train::Losses DistillTask::train_step(const data::Batch& batch) {
  if (online_) return online_train_step(batch);
  // CycleGAN B -> A: the teacher is G_B and its inputs are the B images (an aligned pix2pix
  // dataset already swaps its halves for --direction BtoA).
  const bool swap = !paired_ && config_.direction == "BtoA";
  const auto real_a = (swap ? batch.b : batch.a).to(device_);
  const auto real_b = (swap ? batch.a : batch.b).to(device_);
  // Forwards of the networks under autocast; the terms, the losses, backward and the steps in
  // fp32 outside it (mixed_precision.h). fp32 runs: the regions do nothing, the scaler just steps.
  auto& scaler = precision_.scaler();
  nn::GeneratorOutput teacher_out, student_out;
  {
    const auto autocast = precision_.autocast();
    {
      torch::NoGradGuard no_grad;
      teacher_out = distill_output_in_fp32(teacher_->forward_with_taps(real_a));
    }
    student_out = distill_output_in_fp32(student_->forward_with_taps(real_a));
  }
  // Data-parallel, the terms see the global batch (KA's Gram matrix couples the samples of a
  // batch; train/distributed.h): every rank computes them alike. Single process: the batch itself.
  const auto global_student = train::all_gather_batch(student_out);
  const auto global_teacher = train::all_gather_batch(teacher_out);
  const DistillInputs inputs{train::all_gather_batch(real_a), train::all_gather_batch(real_b), &global_student,
                             &global_teacher};
  auto d_input = [&](const torch::Tensor& image) { return paired_ ? torch::cat({real_a, image}, 1) : image; };

  // D: the student's output as fake, real B as real (conditional on A for pix2pix).
  train::set_requires_grad(*discriminator_, true);
  optimizer_d_->zero_grad();
  torch::Tensor loss_d_fake, loss_d_real;
  if (spade_) {  // SPADE's D loss: fakes and reals in one pass, summed
    std::tie(loss_d_real, loss_d_fake) = spade_->discriminator_losses(*discriminator_, real_a, student_out.image, real_b);
    scaler.scale(loss_d_fake + loss_d_real).backward();
  } else {
    {
      const auto autocast = precision_.autocast();
      loss_d_fake = gan_loss_(discriminator_->forward(d_input(student_out.image).detach()), false, true);
      loss_d_real = gan_loss_(discriminator_->forward(d_input(real_b)), true, true);
    }
    scaler.scale((loss_d_fake + loss_d_real) * 0.5).backward();
  }
  // CAT steps D before G's loss; GAN Compression's MSE distiller steps both after both backwards,
  // so G's loss sees this D (method_registry.h, UpdateOrder).
  const bool discriminator_first = update_order_ == UpdateOrder::kDiscriminatorFirst;
  if (discriminator_first) scaler.step(*optimizer_d_);

  TermLosses extra;
  for (auto& term : terms_) {
    for (auto& l : term->before_generator_step(inputs)) extra.push_back(std::move(l));
  }

  // G: fool the frozen D, reconstruct (B for pix2pix, the teacher's T(A) for cyclegan), distil.
  train::set_requires_grad(*discriminator_, false);
  optimizer_g_->zero_grad();
  torch::Tensor loss_gan;
  {
    const auto autocast = precision_.autocast();
    loss_gan = (spade_ ? spade_->generator_losses(*discriminator_, real_a, student_out.image, real_b).total()
                       : gan_loss_(discriminator_->forward(d_input(student_out.image)), true, false)) *
               distill_.lambda_gan;
  }
  const auto& target = paired_ ? real_b : teacher_out.image;
  const auto loss_recon = torch::l1_loss(student_out.image, target) * distill_.lambda_recon;
  auto loss_g = loss_gan + loss_recon;
  train::Losses losses{{"G_gan", loss_gan.item<double>()}, {"G_recon", loss_recon.item<double>()}};
  add_term_losses(inputs, loss_g, losses);
  scaler.scale(loss_g).backward();
  if (!discriminator_first) scaler.step(*optimizer_d_);
  scaler.step(*optimizer_g_);
  scaler.update();
  train::set_requires_grad(*discriminator_, true);

  losses.emplace_back("D_real", loss_d_real.item<double>());
  losses.emplace_back("D_fake", loss_d_fake.item<double>());
  for (auto& l : extra) losses.push_back(std::move(l));
  return losses;
}

// online_teacher.h's step order: teacher forward, the teacher's own step when due, then the
// student on the teacher's output of this step (detached), its own losses and the terms.
train::Losses DistillTask::online_train_step(const data::Batch& batch) {
  const bool swap = !paired_ && config_.direction == "BtoA";
  const auto real_a = (swap ? batch.b : batch.a).to(device_);
  const auto real_b = (swap ? batch.a : batch.b).to(device_);
  const nn::GeneratorOutput teacher_graph = online_->forward(real_a);
  nn::GeneratorOutput teacher_out{teacher_graph.image.detach(), {}};
  for (const auto& t : teacher_graph.taps) teacher_out.taps.push_back(t.detach());
  const train::Losses teacher_losses = online_->step(batch, real_a, real_b, teacher_graph);

  const nn::GeneratorOutput student_out = student_->forward_with_taps(real_a);
  const DistillInputs inputs{real_a, real_b, &student_out, &teacher_out};
  TermLosses extra;
  for (auto& term : terms_) {
    for (auto& l : term->before_generator_step(inputs)) extra.push_back(std::move(l));
  }
  optimizer_g_->zero_grad();
  const auto& target = paired_ ? real_b : teacher_out.image;
  auto loss_g = torch::l1_loss(student_out.image, target) * distill_.lambda_recon;
  train::Losses losses{{"G_recon", loss_g.item<double>()}};
  add_term_losses(inputs, loss_g, losses);
  for (auto& [name, l] : online_->student_losses(student_out.image, teacher_out.image)) {
    loss_g = loss_g + l;
    losses.emplace_back(name, l.item<double>());
  }
  loss_g.backward();
  optimizer_g_->step();
  for (auto& l : extra) losses.push_back(std::move(l));
  for (const auto& l : teacher_losses) losses.push_back(l);
  return losses;
}

std::vector<std::pair<std::string, torch::nn::Module*>> DistillTask::modules() {
  std::vector<std::pair<std::string, torch::nn::Module*>> m{{"G", student_.get()}};
  if (online_) {
    for (const auto& e : online_->modules()) m.push_back(e);
  } else {
    m.emplace_back("D", discriminator_.get());
    m.emplace_back("T", teacher_.get());
  }
  for (auto& term : terms_) {
    if (term->has_student_side_parameters()) m.emplace_back("A_" + term->method(), term.get());
  }
  for (auto& term : terms_) {
    for (auto& e : term->extra_modules()) m.push_back(e);
  }
  return m;
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> DistillTask::optimizers() {
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> o{{"G", optimizer_g_.get()}};
  if (optimizer_d_) o.emplace_back("D", optimizer_d_.get());
  if (online_) {
    for (const auto& e : online_->optimizers()) o.push_back(e);
  }
  for (auto& term : terms_) {
    for (auto& e : term->extra_optimizers()) o.push_back(e);
  }
  return o;
}

std::vector<std::pair<std::string, torch::nn::Module*>> DistillTask::export_discriminators() {
  if (online_) return {{"D_teacher", online_->discriminator().get()}};
  return {{"D", discriminator_.get()}};
}

train::Metadata DistillTask::discriminator_metadata() const {
  if (online_) return train::discriminator_metadata_for(online_->config(), online_->d_input_nc());
  return train::discriminator_metadata_for(config_, paired_ ? 6 : 3);
}

std::vector<std::pair<std::string, nn::Generator>> DistillTask::tracked_generators() {
  if (!online_) return {};
  return {{"G_teacher", online_->generator()}};
}

bool DistillTask::record_validation(const std::string& name, double psnr) {
  return online_ && name == "G_teacher" && online_->record_validation(psnr);
}

void DistillTask::save_extra_state(train::NamedTensors& tensors, train::Metadata& metadata) const {
  if (online_) online_->save_extra_state(tensors, metadata);
  precision_.scaler().save_state(metadata);
}

void DistillTask::load_extra_state(const train::NamedTensors& tensors, const train::Metadata& metadata) {
  if (online_) online_->load_extra_state(tensors, metadata);
  precision_.scaler().load_state(metadata);
}

std::unique_ptr<train::TrainTask> make_distill_task(const DistillRunConfig& config, const torch::Device& device,
                                                    bool fresh_start) {
  torch::manual_seed(config.train.seed);
  return std::make_unique<DistillTask>(config, device, fresh_start);
}

train::TrainResult train_distill(const DistillRunConfig& config, train::TrainerOptions options) {
  const DistillConfig& distill = config.distill;
  // train() hands both hooks the TrainConfig it resolved; the distillation settings go with it.
  options.task_factory = [distill](const train::TrainConfig& run, const torch::Device& device, bool fresh_start) {
    return make_distill_task({run, distill}, device, fresh_start);
  };
  options.config_json = [distill](const train::TrainConfig& run) { return DistillRunConfig{run, distill}.to_json(); };
  return train::train(config.train, options);
}

StudentScores score_student(nn::GeneratorImpl& student, nn::GeneratorImpl& teacher, const train::ValidationSet& set,
                            int max_images, const torch::Device& device) {
  StudentScores scores;
  scores.vs_truth = train::evaluate_generator(student, set, max_images, device);
  scores.teacher_vs_truth = train::evaluate_generator(teacher, set, max_images, device);
  const bool student_training = student.is_training(), teacher_training = teacher.is_training();
  student.eval();
  teacher.eval();
  torch::NoGradGuard no_grad;
  size_t n = set.inputs->size();
  if (max_images > 0) n = std::min(n, static_cast<size_t>(max_images));
  double psnr_sum = 0, ssim_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto input = set.inputs->get(i, 0).a.unsqueeze(0).to(device);
    const auto x = metrics::quantize_to_uint8(student.forward(input).to(torch::kCPU));
    const auto y = metrics::quantize_to_uint8(teacher.forward(input).to(torch::kCPU));
    psnr_sum += metrics::capped_psnr(x, y);
    ssim_sum += metrics::ssim(x, y).item<double>();
  }
  scores.vs_teacher.count = static_cast<int64_t>(n);
  if (n > 0) {
    scores.vs_teacher.psnr = psnr_sum / static_cast<double>(n);
    scores.vs_teacher.ssim = ssim_sum / static_cast<double>(n);
  }
  student.train(student_training);
  teacher.train(teacher_training);
  return scores;
}

}  // namespace ganlite::compress
