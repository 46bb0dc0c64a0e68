// DCD distillation and discriminator compression on tiny inception generators (ngf 4-8, 3 blocks,
// 32x32): method parsing (dcd, dcd+wkd, none), gradient routing (psi_S and the student yes, the
// teacher G and psi_T never, the teacher D only through its own GAN loss), narrow and pruned
// student Ds, the VGG16 perceptual terms on / off, CycleGAN B -> A.
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
  // A torchvision-named state dict with only the layers up to relu2_2, plus a key to ignore.
  torch::manual_seed(21);
  io::NamedTensors vgg{{"features.0.weight", torch::randn({64, 3, 3, 3}) * 0.1},
                       {"features.0.bias", torch::randn({64}) * 0.1},
                       {"features.2.weight", torch::randn({64, 64, 3, 3}) * 0.05},
                       {"features.2.bias", torch::randn({64}) * 0.1},
                       {"features.5.weight", torch::randn({128, 64, 3, 3}) * 0.05},
                       {"features.5.bias", torch::randn({128}) * 0.1},
                       {"features.7.weight", torch::randn({128, 128, 3, 3}) * 0.05},
                       {"features.7.bias", torch::randn({128}) * 0.1},
                       {"classifier.6.bias", torch::randn({1000})}};
  const auto vgg_file = dir / "vgg16.safetensors";
  io::save_safetensors(vgg_file, vgg);
  auto features = compress::load_vgg16_features(vgg_file.string(), torch::kCPU);
  EXPECT_TRUE(torch::equal(features->features->ptr(5)->as<torch::nn::Conv2dImpl>()->weight, vgg[4].second));
  EXPECT_EQ(features->forward(torch::zeros({1, 3, 32, 32})).sizes(), (std::vector<int64_t>{1, 128, 16, 16}));
  // The same file as a .pth (torch.save's zip format) loads the same.
  const auto pth = dir / "vgg16.pth";
  io::save_pth_state_dict(pth, vgg);
  EXPECT_TRUE(torch::equal(compress::load_vgg16_features(pth.string(), torch::kCPU)->parameters()[2],
                           features->parameters()[2]));
  // A file without a needed key is refused, naming it.
  io::save_safetensors(dir / "short.safetensors", io::NamedTensors(vgg.begin(), vgg.begin() + 6));
  const auto missing = error_of<Error>([&] { compress::load_vgg16_features((dir / "short.safetensors").string(), torch::kCPU); });
  EXPECT_NE(missing.find("features.7.weight"), std::string::npos) << missing;

  auto d = distill(p, "dcd");
  d.set_option("vgg_weights", vgg_file.string());
  d.set_option("lambda_vgg_style", 10.0);
  compress::DistillTask with(compress::make_distill_run_config(base_config("pix2pix", 1), d), torch::kCPU);
  EXPECT_TRUE(dcd_term_of(with).has_vgg());
  const auto batch = fixed_batch(1);
  const auto losses = with.train_step(batch);
  EXPECT_EQ(names_of(losses), (std::vector<std::string>{"G_gan", "G_recon", "G_dcd", "G_dcd_gan", "G_vgg", "G_style",
                                                         "D_real", "D_fake", "D_teacher_real", "D_teacher_fake"}));
  // G_vgg is the relu2_2 L1 between S(A) and T(A) (computed before the step changed S).
  EXPECT_GT(loss_of(losses, "G_vgg"), 0.0);
  EXPECT_GT(loss_of(losses, "G_style"), 0.0);

  d.set_option("vgg_weights", std::string());
  compress::DistillTask without(compress::make_distill_run_config(base_config("pix2pix", 1), d), torch::kCPU);
  EXPECT_FALSE(dcd_term_of(without).has_vgg());
  const auto off = names_of(without.train_step(batch));
  EXPECT_EQ(std::count(off.begin(), off.end(), "G_vgg"), 0);
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
