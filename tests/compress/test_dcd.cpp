// DCD distillation and discriminator compression on tiny inception generators (ngf 4-8, 3 blocks,
// 32x32): method parsing (dcd, dcd+wkd, none), gradient routing (psi_S and the student yes, the
// teacher G and psi_T never, the teacher D only through its own GAN loss), narrow and pruned
// student Ds, CycleGAN B -> A; the release's definitions (docs/fidelity.md, "DCD"): psi_T in
// eval mode at init_net's init, adapter outputs at tap resolution (resized only when too small
// for the D), VGG16 of (x + 1) / 2 with Gram L1 over four layers and the AGD weights.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "ganlite/compress/dcd_term.h"
#include "ganlite/compress/discriminator_prune.h"
#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_task.h"
#include "ganlite/compress/vgg16.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/pth.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/networks.h"
#include "ganlite/util/error.h"
#include "distill_fixtures.h"
#include "test_support.h"
#include "tolerance.h"

namespace fs = std::filesystem;
using namespace ganlite;
using ganlite::testing::TempDir;
using namespace ganlite::testing;

namespace {

std::vector<std::string> names_of(const train::Losses& losses) {
  std::vector<std::string> names;
  for (const auto& [n, v] : losses) names.push_back(n);
  return names;
}

template <typename E = UsageError, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// torchvision vgg16 features.{0..21} conv weights at unit gain (He scale), biases small.
io::NamedTensors synthetic_vgg16(uint64_t seed) {
  torch::manual_seed(seed);
  const std::vector<std::pair<int, std::pair<int64_t, int64_t>>> convs{
      {0, {3, 64}},     {2, {64, 64}},    {5, {64, 128}},   {7, {128, 128}},  {10, {128, 256}},
      {12, {256, 256}}, {14, {256, 256}}, {17, {256, 512}}, {19, {512, 512}}, {21, {512, 512}}};
  io::NamedTensors out;
  for (const auto& [index, io_channels] : convs) {
    const auto [in, o] = io_channels;
    const std::string name = "features." + std::to_string(index);
    out.emplace_back(name + ".weight", torch::randn({o, in, 3, 3}) * std::sqrt(2.0 / (9.0 * in)));
    out.emplace_back(name + ".bias", torch::randn({o}) * 0.1);
  }
  return out;
}

compress::DcdTermImpl& dcd_term_of(compress::DistillTask& task) {
  for (const auto& term : task.terms()) {
    if (auto* dcd = dynamic_cast<compress::DcdTermImpl*>(term.get())) return *dcd;
  }
  throw std::runtime_error("no dcd term");
}

}  // namespace

TEST(DcdMethods, ParsesDcdCombinationsAndNone) {
  EXPECT_EQ(compress::parse_distill_methods("dcd"), (std::vector<std::string>{"dcd"}));
  EXPECT_EQ(compress::parse_distill_methods("dcd+wkd"), (std::vector<std::string>{"dcd", "wkd"}));
  EXPECT_EQ(compress::parse_distill_methods("ka+wkd"), (std::vector<std::string>{"ka", "wkd"}));
  EXPECT_TRUE(compress::parse_distill_methods("none").empty());
  EXPECT_NE(error_of([] { compress::parse_distill_methods("none+ka"); }).find("cannot be combined"), std::string::npos);
  EXPECT_NE(error_of([] { compress::parse_distill_methods("dcd+foo"); }).find("ka, mse, wkd, dcd"), std::string::npos);

  compress::DistillConfig d;
  d.methods = {"dcd", "wkd"};
  d.lambda_gan = 0.5;
  d.teacher = d.student = "x";
  auto r = d.resolved("cyclegan");
  EXPECT_EQ(r.weights.at("dcd"), 1.0);
  EXPECT_EQ(r.weights.at("wkd"), 0.4);
  EXPECT_EQ(r.option("lambda_dcd_gan"), compress::OptionValue(0.5));  // follows --lambda-gan
  EXPECT_EQ(r.method_spec(), "dcd+wkd");
  r.set_option("teacher_ndf", int64_t{16});
  r.set_option("vgg_weights", std::string("vgg.pth"));
  r.student_ndf = 8;
  const auto back = compress::DistillConfig::from_json_string(r.to_json_string());
  EXPECT_EQ(back.option("teacher_ndf"), compress::OptionValue(int64_t{16}));
  EXPECT_EQ(back.option("vgg_weights"), compress::OptionValue(std::string("vgg.pth")));
  EXPECT_EQ(back.student_ndf, 8);
  EXPECT_EQ(back.option("lambda_dcd_gan"), compress::OptionValue(0.5));

  compress::DistillConfig none;
  none.teacher = none.student = "x";
  EXPECT_EQ(none.method_spec(), "none");
  EXPECT_NO_THROW(none.validate(1));
  none.set_option("vgg_weights", std::string("vgg.pth"));
  EXPECT_NE(error_of([&] { none.validate(1); }).find("add dcd to --method"), std::string::npos);
  none.set_option("vgg_weights", std::string());
  none.prune_d_ratio = 0.5;
  EXPECT_NE(error_of([&] { none.validate(1); }).find("--restore-d"), std::string::npos);
}

TEST(DcdTask, GradientsReachPsiSAndStudentNeverTheTeacherOrPsiT_TeacherDOnlyByItsOwnLoss) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  // An InstanceNorm D: no running statistics, so the reference below can match every buffer (a
  // BatchNorm D, the default for this inception BatchNorm student, also updates its running
  // statistics on the student's DCD passes).
  auto base = base_config("pix2pix", 2);
  base.norm_D = "instance";
  const auto config = compress::make_distill_run_config(base, distill(p, "dcd"));
  compress::DistillTask task(config, torch::kCPU);
  auto& dcd = dcd_term_of(task);
  ASSERT_TRUE(dcd.has_student_side_parameters());
  EXPECT_FALSE(dcd.has_vgg());
  EXPECT_EQ(dcd.student_adapters.size(), 4u);
  // Conditional D: adapters map each tap to 6 channels; the teacher D has the run's width.
  EXPECT_EQ(dcd.student_adapters[0]->ptr(0)->as<torch::nn::Conv2dImpl>()->weight.size(0), 6);
  EXPECT_EQ(dcd.teacher_discriminator()->parameters()[0].sizes(), (std::vector<int64_t>{4, 6, 4, 4}));

  // A reference teacher D: the same start, stepped by its own Adam on only its own GAN loss.
  const auto resolved = config.train.resolved();
  auto reference = train::build_discriminator(resolved, 6, torch::kCPU);
  io::load_state_dict(*reference, io::state_dict(*dcd.teacher_discriminator()));
  torch::optim::Adam reference_adam(reference->parameters(),
                                    torch::optim::AdamOptions(resolved.lr).betas({resolved.beta1, resolved.beta2}));
  const train::GanLoss gan(resolved.gan_mode);

  const auto teacher_before = snapshot(*task.teacher());
  const auto teacher_d_before = snapshot(*dcd.teacher_discriminator());
  const auto student_before = snapshot(*task.student());
  const auto psi_s_before = snapshot(dcd);
  std::map<std::string, torch::Tensor> psi_t_before;
  for (const auto& item : dcd.teacher_adapters()->named_parameters()) psi_t_before[item.key()] = item.value().clone();
  const auto batch = fixed_batch(2);
  torch::Tensor teacher_image;
  {
    torch::NoGradGuard no_grad;
    teacher_image = task.teacher()->forward(batch.a);
  }
  train::Losses losses;
  for (int i = 0; i < 2; ++i) {
    losses = task.train_step(batch);
    reference_adam.zero_grad();
    const auto fake = gan(reference->forward(torch::cat({batch.a, teacher_image}, 1)), false, true);
    const auto real = gan(reference->forward(torch::cat({batch.a, batch.b}, 1)), true, true);
    ((fake + real) * 0.5).backward();
    reference_adam.step();
    EXPECT_NEAR(loss_of(losses, "D_teacher_real"), real.item<double>(), 1e-6);
  }
  EXPECT_EQ(names_of(losses), (std::vector<std::string>{"G_gan", "G_recon", "G_dcd", "G_dcd_gan", "D_real", "D_fake",
                                                         "D_teacher_real", "D_teacher_fake"}));
  EXPECT_GT(loss_of(losses, "G_dcd"), 0.0);

  // The teacher D moved exactly as its own loss says (a leak of G_dcd / G_dcd_gan would differ).
  const auto expected = snapshot(*reference);
  int moved = 0;
  for (const auto& [k, t] : snapshot(*dcd.teacher_discriminator())) {
    EXPECT_TRUE(torch::allclose(t, expected.at(k), 1e-6, 1e-7)) << k;
  }
  for (const auto& item : dcd.teacher_discriminator()->named_parameters()) {
    EXPECT_FALSE(item.value().requires_grad()) << item.key();  // off outside its own step
    moved += !torch::equal(item.value(), teacher_d_before.at(item.key()));
  }
  EXPECT_EQ(moved, static_cast<int>(dcd.teacher_discriminator()->parameters().size()));

  // The teacher G: bit-identical, no gradients. psi_T: bit-identical, no gradients.
  for (const auto& [k, t] : io::state_dict(*task.teacher())) EXPECT_TRUE(torch::equal(t, teacher_before.at(k))) << k;
  for (const auto& param : task.teacher()->parameters()) EXPECT_FALSE(param.grad().defined());
  for (const auto& item : dcd.teacher_adapters()->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), psi_t_before.at(item.key()))) << item.key();
    EXPECT_FALSE(item.value().grad().defined() && item.value().grad().abs().sum().item<double>() > 0) << item.key();
  }
  // psi_S and the student learn.
  for (const auto& item : dcd.named_parameters()) {
    const auto& t = item.value();
    EXPECT_TRUE(t.grad().defined() && t.grad().abs().sum().item<double>() > 0) << item.key();
    EXPECT_FALSE(torch::equal(t, psi_s_before.at(item.key()))) << item.key();
  }
  int changed = 0;
  for (const auto& item : task.student()->named_parameters()) {
    changed += !torch::equal(item.value(), student_before.at(item.key()));
  }
  EXPECT_GT(changed, static_cast<int>(task.student()->parameters().size()) / 2);

  std::vector<std::string> modules, optimizers;
  for (const auto& [n, m] : task.modules()) modules.push_back(n);
  for (const auto& [n, o] : task.optimizers()) optimizers.push_back(n);
  EXPECT_EQ(modules, (std::vector<std::string>{"G", "D", "T", "A_dcd", "D_teacher", "A_dcd_teacher"}));
  EXPECT_EQ(optimizers, (std::vector<std::string>{"G", "D", "D_teacher"}));
}

TEST(DcdTask, DcdLossGradientReachesTheStudentThroughTheTeacherD) {
  // Only the DCD term: the student still changes, so its gradient goes through D' and psi_S.
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  auto d = distill(p, "dcd");
  d.lambda_gan = 0;
  d.lambda_recon = 0;
  compress::DistillTask task(compress::make_distill_run_config(base_config("pix2pix", 2), d), torch::kCPU);
  const auto student_before = snapshot(*task.student());
  const auto losses = task.train_step(fixed_batch(2));
  EXPECT_EQ(loss_of(losses, "G_dcd_gan"), 0.0);  // follows lambda_gan
  EXPECT_EQ(loss_of(losses, "G_gan"), 0.0);
  int changed = 0;
  for (const auto& item : task.student()->named_parameters()) {
    changed += !torch::equal(item.value(), student_before.at(item.key()));
  }
  EXPECT_GT(changed, 0);
}

TEST(DcdTask, CycleGanUnconditionalAdaptersNarrowStudentDAndBtoA) {
  TempDir dir;
  const auto p = make_pair_files(dir, "instance_affine");
  auto d = distill(p, "dcd+wkd");
  d.student_ndf = 2;
  auto base = base_config("cyclegan", 1);
  base.direction = "BtoA";
  const auto config = compress::make_distill_run_config(base, d);
  EXPECT_EQ(config.train.ndf, 2);
  compress::DistillTask task(config, torch::kCPU);
  auto& dcd = dcd_term_of(task);
  EXPECT_EQ(dcd.student_adapters[0]->ptr(0)->as<torch::nn::Conv2dImpl>()->weight.size(0), 3);
  EXPECT_EQ(dcd.teacher_discriminator()->parameters()[0].sizes(), (std::vector<int64_t>{4, 3, 4, 4}));
  EXPECT_EQ(task.discriminator()->parameters()[0].sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(task.discriminator_metadata().at("ndf"), "2");

  // B -> A: the inputs are the batch's B images and the recon target is T(B).
  const auto batch = fixed_batch(1);
  torch::Tensor s, t;
  {
    torch::NoGradGuard no_grad;
    s = task.student()->forward(batch.b);
    t = task.teacher()->forward(batch.b);
  }
  const double expected = 5.0 * torch::l1_loss(s, t).item<double>();
  const auto losses = task.train_step(batch);
  EXPECT_NEAR(loss_of(losses, "G_recon"), expected, 1e-5);
  EXPECT_GT(loss_of(losses, "G_wkd"), 0.0);
  EXPECT_GT(loss_of(losses, "G_dcd"), 0.0);
}

TEST(DcdTask, MethodNoneTrainsWithGanAndReconOnly) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  compress::DistillTask task(compress::make_distill_run_config(base_config("pix2pix", 1), distill(p, "none")),
                             torch::kCPU);
  EXPECT_TRUE(task.terms().empty());
  EXPECT_EQ(names_of(task.train_step(fixed_batch(1))), (std::vector<std::string>{"G_gan", "G_recon", "D_real", "D_fake"}));
}

TEST(DcdVgg, PerceptualTermsOnlyWithWeightsAndOnlyTheirLayersAreRead) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  // A torchvision-named state dict with the ten convs up to relu4_3, plus a key to ignore.
  io::NamedTensors vgg = synthetic_vgg16(21);
  vgg.emplace_back("classifier.6.bias", torch::randn({1000}));
  const auto vgg_file = dir / "vgg16.safetensors";
  io::save_safetensors(vgg_file, vgg);
  auto features = compress::load_vgg16_features(vgg_file.string(), torch::kCPU);
  EXPECT_TRUE(torch::equal(features->features->ptr(5)->as<torch::nn::Conv2dImpl>()->weight, vgg[4].second));
  EXPECT_TRUE(torch::equal(features->features->ptr(21)->as<torch::nn::Conv2dImpl>()->weight, vgg[18].second));
  {
    torch::NoGradGuard no_grad;
    const auto outs = features->forward(torch::zeros({1, 3, 32, 32}));
    ASSERT_EQ(outs.size(), 4u);
    EXPECT_EQ(outs[0].sizes(), (std::vector<int64_t>{1, 64, 32, 32}));    // relu1_2
    EXPECT_EQ(outs[1].sizes(), (std::vector<int64_t>{1, 128, 16, 16}));   // relu2_2
    EXPECT_EQ(outs[2].sizes(), (std::vector<int64_t>{1, 256, 8, 8}));     // relu3_3
    EXPECT_EQ(outs[3].sizes(), (std::vector<int64_t>{1, 512, 4, 4}));     // relu4_3
  }
  // The same file as a .pth (torch.save's zip format) loads the same.
  const auto pth = dir / "vgg16.pth";
  io::save_pth_state_dict(pth, vgg);
  EXPECT_TRUE(torch::equal(compress::load_vgg16_features(pth.string(), torch::kCPU)->parameters()[2],
                           features->parameters()[2]));
  // A file without a needed key is refused, naming it.
  io::save_safetensors(dir / "short.safetensors", io::NamedTensors(vgg.begin(), vgg.begin() + 18));
  const auto missing = error_of<Error>([&] { compress::load_vgg16_features((dir / "short.safetensors").string(), torch::kCPU); });
  EXPECT_NE(missing.find("features.21.weight"), std::string::npos) << missing;

  auto d = distill(p, "dcd");
  d.set_option("vgg_weights", vgg_file.string());
  compress::DistillTask with(compress::make_distill_run_config(base_config("pix2pix", 1), d), torch::kCPU);
  EXPECT_TRUE(dcd_term_of(with).has_vgg());
  const auto batch = fixed_batch(1);
  const auto losses = with.train_step(batch);
  EXPECT_EQ(names_of(losses), (std::vector<std::string>{"G_gan", "G_recon", "G_dcd", "G_dcd_gan", "G_vgg", "G_style",
                                                         "D_real", "D_fake", "D_teacher_real", "D_teacher_fake"}));
  EXPECT_GT(loss_of(losses, "G_vgg"), 0.0);
  EXPECT_GT(loss_of(losses, "G_style"), 0.0);

  d.set_option("vgg_weights", std::string());
  compress::DistillTask without(compress::make_distill_run_config(base_config("pix2pix", 1), d), torch::kCPU);
  EXPECT_FALSE(dcd_term_of(without).has_vgg());
  const auto off = names_of(without.train_step(batch));
  EXPECT_EQ(std::count(off.begin(), off.end(), "G_vgg"), 0);
}

TEST(DcdVgg, InputIsHalfXPlusOneWithoutImageNetStatisticsAsTheReleaseFeedsIt) {
  // DCD-official utils/vgg_feature.py, VGGFeature.__call__: vgg((x + 1) / 2). relu1_2 by hand
  // from the loaded weights: relu(conv2(relu(conv1((x + 1) / 2)))).
  TempDir dir;
  const auto vgg = synthetic_vgg16(5);
  io::save_safetensors(dir / "v.safetensors", vgg);
  auto features = compress::load_vgg16_features((dir / "v.safetensors").string(), torch::kCPU);
  torch::manual_seed(6);
  const auto x = torch::rand({2, 3, 16, 16}) * 2 - 1;
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  const auto conv = [](const torch::Tensor& in, const torch::Tensor& w, const torch::Tensor& b) {
    return torch::relu(F::conv2d(in, w, F::Conv2dFuncOptions().bias(b).padding(1)));
  };
  const auto want = conv(conv((x + 1) * 0.5, vgg[0].second, vgg[1].second), vgg[2].second, vgg[3].second);
  const auto got = features->forward(x)[0];
  // The same two convs (fan-in 27 and 576) by two code paths.
  ganlite::testing::expect_close(got, want, ganlite::testing::fp32_network_tolerance(27 + 576, max_abs(want)),
                                 "relu1_2 of (x + 1) / 2");
  // ImageNet normalisation (the earlier input) gives another map, far outside that bound.
  const auto mean = torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1});
  const auto imagenet = conv(conv(((x + 1) * 0.5 - mean) / std, vgg[0].second, vgg[1].second), vgg[2].second,
                             vgg[3].second);
  EXPECT_GT(max_abs(imagenet - got), 100 * ganlite::testing::fp32_network_tolerance(27 + 576, max_abs(want)));
}

TEST(DcdVgg, StyleIsGramL1SummedOverFourLayersAndFeatureIsRelu22L1WithTheReleasesWeights) {
  // DCD-official cycleganbest_distiller.py, backward_G_Student: G_style = AGD_weights[0] *
  // sum over relu1_2..relu4_3 of L1(gram(S), gram(T)), gram / (C H W); G_feature =
  // AGD_weights[1] * L1(relu2_2); the scripts' --AGD_weights 1e1,1e4,... give 10 and 1e4.
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  io::save_safetensors(dir / "v.safetensors", synthetic_vgg16(8));
  auto d = distill(p, "dcd");
  d.set_option("vgg_weights", (dir / "v.safetensors").string());
  const auto config = compress::make_distill_run_config(base_config("pix2pix", 2), d);
  EXPECT_EQ(config.distill.option("lambda_vgg_style"), compress::OptionValue(10.0));
  EXPECT_EQ(config.distill.option("lambda_vgg_feature"), compress::OptionValue(1e4));
  compress::DistillTask task(config, torch::kCPU);
  auto vgg = compress::load_vgg16_features((dir / "v.safetensors").string(), torch::kCPU);
  const auto batch = fixed_batch(2);
  double style = 0, feature = 0, relu2_2_mse = 0;
  {
    torch::NoGradGuard no_grad;
    const auto s = vgg->forward(task.student()->forward(batch.a));
    const auto t = vgg->forward(task.teacher()->forward(batch.a));
    for (size_t i = 0; i < 4; ++i) {
      const auto gram = [](const torch::Tensor& f) {
        const auto flat = f.to(torch::kFloat64).flatten(2);
        return torch::bmm(flat, flat.transpose(1, 2)) / static_cast<double>(f.size(1) * f.size(2) * f.size(3));
      };
      style += (gram(s[i]) - gram(t[i])).abs().mean().item<double>();
    }
    feature = (s[1] - t[1]).to(torch::kFloat64).abs().mean().item<double>();
    relu2_2_mse = torch::mse_loss(compress::gram_matrix(s[1]), compress::gram_matrix(t[1])).item<double>();
  }
  const auto losses = task.train_step(batch);
  // fp64 reference of the fp32 reductions: relative 1e-4 covers the Gram sums (length <= 1024).
  ganlite::testing::expect_figure_close(loss_of(losses, "G_style"), 10.0 * style, 1e-4 * 10.0 * style, "G_style");
  ganlite::testing::expect_figure_close(loss_of(losses, "G_vgg"), 1e4 * feature, 1e-4 * 1e4 * feature, "G_vgg");
  // The earlier style term (MSE of the relu2_2 Gram matrices) is another figure.
  EXPECT_GT(std::abs(loss_of(losses, "G_style") - 10.0 * relu2_2_mse), 1e-2 * 10.0 * style);
}

TEST(DcdAdapters, PsiTStaysInEvalModeAtInitNetsInitAndItsBuffersNeverChange) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  auto base = base_config("pix2pix", 2);
  base.norm_D = "instance";
  compress::DistillTask task(compress::make_distill_run_config(base, distill(p, "dcd")), torch::kCPU);
  auto& dcd = dcd_term_of(task);
  auto psi_t = dcd.teacher_adapters();
  EXPECT_FALSE(psi_t->is_training());
  std::map<std::string, torch::Tensor> buffers_before;
  for (const auto& item : psi_t->named_buffers()) buffers_before[item.key()] = item.value().clone();
  ASSERT_EQ(buffers_before.size(), 12u);  // 4 BatchNorms x (running_mean, running_var, num_batches_tracked)

  // init_net on both sides: conv weights N(0, 0.02), BatchNorm gamma N(1, 0.02), beta 0.
  for (const bool teacher_side : {false, true}) {
    std::vector<torch::Tensor> conv, gamma;
    for (size_t i = 0; i < 4; ++i) {
      auto& adapter = teacher_side ? psi_t->adapters[i] : dcd.student_adapters[i];
      conv.push_back(adapter->ptr(0)->as<torch::nn::Conv2dImpl>()->weight.detach().flatten());
      auto* bn = adapter->ptr(1)->as<torch::nn::BatchNorm2dImpl>();
      gamma.push_back(bn->weight.detach());
      EXPECT_EQ(bn->bias.abs().max().item<double>(), 0.0);
    }
    // Sampling spreads of n normal draws: mean within 6 s / sqrt(n), std within 6 s / sqrt(2n).
    const auto w = torch::cat(conv).to(torch::kFloat64), g = torch::cat(gamma).to(torch::kFloat64);
    const double n = w.numel(), m = g.numel();
    EXPECT_LT(std::abs(w.mean().item<double>()), 6 * 0.02 / std::sqrt(n)) << teacher_side;
    EXPECT_LT(std::abs(w.std().item<double>() - 0.02), 6 * 0.02 / std::sqrt(2 * n)) << teacher_side;
    EXPECT_LT(std::abs(g.mean().item<double>() - 1.0), 6 * 0.02 / std::sqrt(m)) << teacher_side;
    EXPECT_LT(std::abs(g.std().item<double>() - 0.02), 6 * 0.02 / std::sqrt(2 * m)) << teacher_side;
  }

  for (int step = 0; step < 2; ++step) task.train_step(fixed_batch(2));
  EXPECT_FALSE(psi_t->is_training());
  for (const auto& item : psi_t->named_buffers()) {
    EXPECT_TRUE(torch::equal(item.value(), buffers_before.at(item.key()))) << item.key();
  }

  // Its output normalises with the running statistics (mean 0, var 1): relu(gamma conv(x) /
  // sqrt(1 + eps) + beta), not with the batch's.
  torch::manual_seed(3);
  auto& adapter = psi_t->adapters[0];
  const auto& w = adapter->ptr(0)->as<torch::nn::Conv2dImpl>()->weight;
  auto* bn = adapter->ptr(1)->as<torch::nn::BatchNorm2dImpl>();
  const auto x = torch::randn({2, w.size(1), 8, 8});
  torch::NoGradGuard no_grad;
  const auto z = torch::nn::functional::conv2d(x, w);
  const auto scale = bn->weight.view({1, -1, 1, 1}) / std::sqrt(1.0 + bn->options.eps());
  const auto want = torch::relu(z * scale + bn->bias.view({1, -1, 1, 1}));
  const auto got = adapter->forward(x);
  const double bound = ganlite::testing::fp32_network_tolerance(w.size(1) + 2, max_abs(want));
  ganlite::testing::expect_close(got, want, bound, "psi_T with running statistics");
  const auto batch_stats = torch::relu(torch::batch_norm(z, bn->weight, bn->bias, {}, {}, true, 0.1,
                                                         bn->options.eps(), false));
  EXPECT_GT(max_abs(batch_stats - got), 100 * bound);
}

TEST(DcdAdapters, SmallestInputOfTheTeacherDMatchesWhatTorchAccepts) {
  // 4x4 convs, padding 1: stride 2 halves, stride 1 takes one off; InstanceNorm needs > 1 position.
  const std::vector<std::pair<int, int64_t>> expected{{1, 6}, {2, 12}, {3, 24}};
  for (const auto& [layers, side] : expected) {
    for (const std::string norm : {"instance", "batch"}) {
      nn::DiscriminatorConfig c{"n_layers", 3, 4, layers, norm};
      torch::manual_seed(1);
      auto d = nn::make_discriminator(c);
      EXPECT_EQ(compress::smallest_fitting_side(*d), side) << layers << " " << norm;
      torch::NoGradGuard no_grad;
      EXPECT_EQ(d->forward(torch::randn({2, 3, side, side})).scales.at(0).logits.numel() > 0, true);
      EXPECT_ANY_THROW(d->forward(torch::randn({2, 3, side - 1, side - 1}))) << layers << " " << norm;
    }
  }
  auto pixel = nn::make_discriminator(nn::DiscriminatorConfig{"pixel", 3, 4, 3, "batch"});
  EXPECT_EQ(compress::smallest_fitting_side(*pixel), 1);
  EXPECT_NE(compress::dcd_tap_size_help(*pixel).find("1x1"), std::string::npos);
}

namespace {

// L_dcd by hand from the term's adapters and teacher D: each adapter output either as it is or
// resized bilinearly to `image_side`; the D's features before its last conv, L1, summed over taps.
torch::Tensor dcd_by_hand(compress::DcdTermImpl& dcd, const std::vector<torch::Tensor>& s,
                          const std::vector<torch::Tensor>& t, int64_t image_side, std::vector<int64_t>* cut_shape) {
  namespace F = torch::nn::functional;
  const auto prepare = [&](const torch::Tensor& x) {
    if (image_side == 0) return x;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{image_side, image_side})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  };
  auto d = dcd.teacher_discriminator();
  torch::NoGradGuard no_grad;
  torch::Tensor total = torch::zeros({});
  for (size_t i = 0; i < s.size(); ++i) {
    const auto cut_of = [&](const torch::Tensor& x) { return d->forward(prepare(x)).scales.at(0).features.back(); };
    const auto mine = cut_of(dcd.student_adapters[i]->forward(s[i]));
    const auto target = cut_of(dcd.teacher_adapters()->adapters[i]->forward(t[i]));
    *cut_shape = mine.sizes().vec();
    total = total + torch::l1_loss(mine, target);
  }
  return total;
}

}  // namespace

TEST(DcdAdapters, OutputsEnterTheTeacherDAtTapResolutionAndAreResizedOnlyWhenTooSmall) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  for (const int layers : {1, 3}) {
    auto base = base_config("pix2pix", 2);
    base.netD = "n_layers";
    base.n_layers_D = layers;
    base.norm_D = "instance";  // no running statistics: the hand computation sees the same D
    compress::DistillTask task(compress::make_distill_run_config(base, distill(p, "dcd")), torch::kCPU);
    auto& dcd = dcd_term_of(task);
    // Synthetic 8x8 taps (a 32x32 image's quarter) of the adapters' widths.
    torch::manual_seed(11);
    const auto in_channels = [](torch::nn::Sequential& adapter) {
      return adapter->ptr(0)->as<torch::nn::Conv2dImpl>()->weight.size(1);
    };
    std::vector<torch::Tensor> s, t;
    for (size_t i = 0; i < 4; ++i) {
      s.push_back(torch::randn({2, in_channels(dcd.student_adapters[i]), 8, 8}));
      t.push_back(torch::randn({2, in_channels(dcd.teacher_adapters()->adapters[i]), 8, 8}));
    }
    const auto image = torch::randn({2, 3, 32, 32});
    const nn::GeneratorOutput so{image, s}, to{image, t};
    const double got = dcd.loss(compress::DistillInputs{image, image, &so, &to}).item<double>();
    std::vector<int64_t> cut;
    // A 1-layer D takes 6x6 and up: the 8x8 outputs go in as they are, D' is 3x3 (8 -> 4 -> 3).
    // A 3-layer D needs 24x24: they are resized to 32x32 (D' 3x3 too: 32 -> 16 -> 8 -> 4 -> 3).
    const double want = dcd_by_hand(dcd, s, t, layers == 1 ? 0 : 32, &cut).item<double>();
    EXPECT_EQ(std::vector<int64_t>(cut.begin() + 2, cut.end()), (std::vector<int64_t>{3, 3})) << layers;
    ganlite::testing::expect_figure_close(got, want, 1e-5 * want, "L_dcd, n_layers " + std::to_string(layers));
    if (layers == 1) {
      const double resized = dcd_by_hand(dcd, s, t, 32, &cut).item<double>();
      EXPECT_EQ(std::vector<int64_t>(cut.begin() + 2, cut.end()), (std::vector<int64_t>{15, 15}));
      EXPECT_GT(std::abs(got - resized), 1e-3 * want);
    } else {
      EXPECT_ANY_THROW(dcd_by_hand(dcd, s, t, 0, &cut));  // the 3-layer D cannot take 8x8
    }
  }
}

TEST(DiscriminatorPrune, KeepsTheLargestScoresAndZeroChannelsDropOutExactly) {
  nn::DiscriminatorConfig c;
  c.input_nc = 6;
  c.ndf = 8;
  c.norm = "batch";
  torch::manual_seed(4);
  auto d = nn::make_discriminator(c);
  auto& seq = *dynamic_cast<nn::NLayerDiscriminatorImpl&>(*d).model;
  // Half of every layer's channels is dead: the first conv's filters (scored by L1 norm) and
  // every BatchNorm's gamma and beta (scored by |gamma|) are zero on the odd channels.
  {
    torch::NoGradGuard no_grad;
    auto& conv0 = *seq.ptr(0)->as<torch::nn::Conv2dImpl>();
    conv0.weight.index({torch::indexing::Slice(1, torch::indexing::None, 2)}).zero_();
    conv0.bias.index({torch::indexing::Slice(1, torch::indexing::None, 2)}).zero_();
    for (int i : {3, 6, 9}) {
      auto& bn = *seq.ptr(i)->as<torch::nn::BatchNorm2dImpl>();
      bn.weight.uniform_(0.5, 1.5);
      bn.weight.index({torch::indexing::Slice(1, torch::indexing::None, 2)}).zero_();
      bn.bias.index({torch::indexing::Slice(1, torch::indexing::None, 2)}).zero_();
      bn.running_mean.uniform_(-0.1, 0.1);
    }
  }
  const auto scores = compress::discriminator_channel_scores(*d);
  ASSERT_EQ(scores.size(), 4u);
  EXPECT_EQ(scores[1].sizes(), (std::vector<int64_t>{16}));
  EXPECT_EQ(scores[1][1].item<double>(), 0.0);

  auto pruned = compress::prune_discriminator(*d, c, 4);
  const auto params = io::state_dict(*pruned);
  std::map<std::string, torch::Tensor> by_name(params.begin(), params.end());
  EXPECT_EQ(by_name.at("model.0.weight").sizes(), (std::vector<int64_t>{4, 6, 4, 4}));
  EXPECT_EQ(by_name.at("model.2.weight").sizes(), (std::vector<int64_t>{8, 4, 4, 4}));
  EXPECT_EQ(by_name.at("model.8.weight").sizes(), (std::vector<int64_t>{32, 16, 4, 4}));
  EXPECT_EQ(by_name.at("model.11.weight").sizes(), (std::vector<int64_t>{1, 32, 4, 4}));
  const auto even = torch::arange(0, 16, 2);
  EXPECT_TRUE(torch::equal(by_name.at("model.3.weight"), seq.ptr(3)->as<torch::nn::BatchNorm2dImpl>()->weight.index_select(0, even)));
  // Dead channels contribute nothing, so in eval mode the narrow D predicts exactly the same.
  d->eval();
  pruned->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 6, 32, 32});
  // Convs of other widths may take other kernels: two fp32 evaluations of the network.
  const auto want = d->forward(x).scales.at(0).logits;
  ganlite::testing::expect_close(pruned->forward(x).scales.at(0).logits, want,
                                 ganlite::testing::fp32_network_tolerance(*d, ganlite::testing::max_abs(want)),
                                 "pruned D");
  EXPECT_NE(error_of([&] { compress::prune_discriminator(*d, c, 9); }).find("<= 8"), std::string::npos);
}

TEST(DiscriminatorPrune, RestoreDIsPrunedOnRequestOtherwiseAWidthMismatchNamesTheShapes) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  auto base = base_config("pix2pix", 1);
  base.ndf = 8;
  torch::manual_seed(99);
  auto trained = train::build_discriminator(base.resolved(), 6, torch::kCPU);
  auto meta = train::discriminator_metadata_for(base.resolved(), 6);
  const auto d_file = dir / "latest_net_D.safetensors";
  io::save_module(d_file, *trained, meta);

  auto d = distill(p, "none");
  d.restore_d = d_file.string();
  d.prune_d_ratio = 0.5;
  const auto config = compress::make_distill_run_config(base, d);
  EXPECT_EQ(config.train.ndf, 4);
  compress::DistillTask task(config, torch::kCPU);
  auto expected = compress::prune_discriminator(*trained, nn::DiscriminatorConfig{"n_layers", 6, 8, 3, "instance"}, 4);
  const auto got = snapshot(*task.discriminator());
  for (const auto& [k, t] : io::state_dict(*expected)) EXPECT_TRUE(torch::equal(t, got.at(k))) << k;
  EXPECT_EQ(task.discriminator_metadata().at("ndf"), "4");

  // --student-ndf without pruning: the file's D does not fit, and the message shows both shapes.
  d.prune_d_ratio = 0;
  d.student_ndf = 4;
  const auto msg =
      error_of<Error>([&] { compress::DistillTask wrong(compress::make_distill_run_config(base, d), torch::kCPU); });
  EXPECT_NE(msg.find("8, 6, 4, 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4, 6, 4, 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--prune-d-ratio"), std::string::npos) << msg;
  d.prune_d_ratio = 0.5;
  EXPECT_NE(error_of([&] { compress::make_distill_run_config(base, d); }).find("not both"), std::string::npos);
}

TEST(DcdTask, RestoreTeacherDStartsTheTeacherDFromAFile) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  auto base = base_config("pix2pix", 1);
  base.ndf = 8;
  torch::manual_seed(7);
  auto trained = train::build_discriminator(base.resolved(), 6, torch::kCPU);
  const auto d_file = dir / "teacher_D.safetensors";
  io::save_module(d_file, *trained, train::discriminator_metadata_for(base.resolved(), 6));
  auto d = distill(p, "dcd");
  d.set_option("dcd_restore_teacher_d", d_file.string());
  d.student_ndf = 2;
  compress::DistillTask task(compress::make_distill_run_config(base, d), torch::kCPU);
  const auto got = snapshot(*dcd_term_of(task).teacher_discriminator());
  for (const auto& [k, t] : io::state_dict(*trained)) EXPECT_TRUE(torch::equal(t, got.at(k))) << k;
  EXPECT_EQ(task.discriminator()->parameters()[0].size(0), 2);
  // A teacher D of another width is refused, naming the flag.
  d.set_option("teacher_ndf", int64_t{4});
  const auto msg = error_of<Error>([&] { compress::DistillTask t(compress::make_distill_run_config(base, d), torch::kCPU); });
  EXPECT_NE(msg.find("--dcd-restore-teacher-d"), std::string::npos) << msg;
}
