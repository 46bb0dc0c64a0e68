// Semantic image synthesis training (train/spade_task.h): SPADE's multi-scale D (shapes, keys,
// spectral norm), its losses by hand, TTUR, and `ganlite train --task spade` end to end on tiny
// labels2scenes data with resume and translate.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/multiscale_discriminator.h"
#include "ganlite/nn/spade_generator.h"
#include "ganlite/nn/spectral_norm.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/spade_task.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
namespace nn = ganlite::nn;
namespace train = ganlite::train;
using ganlite::testing::read_jsonl;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

nn::Discriminator tiny_multiscale(int input_nc, int ndf = 4) {
  nn::DiscriminatorConfig c;
  c.arch = "multiscale";
  c.input_nc = input_nc;
  c.ndf = ndf;
  c.norm = "instance";
  return nn::make_discriminator(c);
}

std::vector<int64_t> shape(const torch::Tensor& t) { return t.sizes().vec(); }

TEST(MultiscaleDiscriminator, ShapesAndKeysAsSpade) {
  torch::manual_seed(0);
  auto d = tiny_multiscale(7);
  const auto out = d->forward(torch::randn({2, 7, 16, 32}));
  ASSERT_EQ(out.scales.size(), 2u);
  // Scale 0 at 16x32: s2 convs with padding 2 give floor(n / 2) + 1, the s1 conv n + 1.
  ASSERT_EQ(out.scales[0].features.size(), 4u);
  EXPECT_EQ(shape(out.scales[0].features[0]), (std::vector<int64_t>{2, 4, 9, 17}));
  EXPECT_EQ(shape(out.scales[0].features[3]), (std::vector<int64_t>{2, 32, 4, 6}));
  EXPECT_EQ(shape(out.scales[0].logits), (std::vector<int64_t>{2, 1, 5, 7}));
  // Scale 1 sees the input average-pooled to 8x16.
  EXPECT_EQ(shape(out.scales[1].features[0]), (std::vector<int64_t>{2, 4, 5, 9}));
  EXPECT_EQ(shape(out.scales[1].logits), (std::vector<int64_t>{2, 1, 4, 5}));

  std::set<std::string> keys;
  for (const auto& [name, t] : ganlite::io::state_dict(*d)) keys.insert(name);
  for (const std::string k :
       {"discriminator_0.model0.0.weight", "discriminator_0.model0.0.bias", "discriminator_0.model1.0.0.weight_orig",
        "discriminator_0.model1.0.0.weight_u", "discriminator_0.model1.0.0.weight_v",
        "discriminator_0.model3.0.0.weight_orig", "discriminator_1.model4.0.weight", "discriminator_1.model4.0.bias"}) {
    EXPECT_TRUE(keys.count(k)) << k;
  }
  EXPECT_FALSE(keys.count("discriminator_0.model1.0.0.bias"));  // removed before the norm, as SPADE
  EXPECT_EQ(keys.size(), 2u * (2 + 3 * 3 + 2));
  // Widths cap at 512, not 8 ndf: ndf 128 gives 128, 256, 512, 512.
  nn::DiscriminatorConfig wide;
  wide.arch = "multiscale";
  wide.input_nc = 7;
  wide.ndf = 128;
  const int64_t per_scale = 7 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 512 * 16 + 512 * 16;
  EXPECT_EQ(wide.conv_weight_count(), 2 * per_scale);
}

TEST(MultiscaleDiscriminator, SpectralNormConvergesToUnitSpectralNorm) {
  torch::manual_seed(1);
  nn::SpectralNormConv2d conv(3, 5, 4, 2, 2);
  conv->train();
  const auto x = torch::randn({1, 3, 8, 8});
  for (int i = 0; i < 200; ++i) conv->forward(x);  // one power iteration per training forward
  const auto w = conv->normalized_weight().reshape({5, -1});
  const double top = std::get<1>(torch::svd(w)).max().item<double>();
  EXPECT_NEAR(top, 1.0, 1e-3);
  // Eval mode leaves u and v alone.
  conv->eval();
  const auto u = conv->weight_u.clone();
  conv->forward(x);
  EXPECT_TRUE(torch::equal(u, conv->weight_u));
}

nn::DiscriminatorOutput output_of(std::vector<std::vector<float>> features, std::vector<std::vector<float>> logits) {
  nn::DiscriminatorOutput out;
  for (size_t i = 0; i < logits.size(); ++i) {
    nn::DiscriminatorScale s;
    s.logits = torch::tensor(logits[i]);
    for (float f : features[i]) s.features.push_back(torch::full({2, 2}, f));
    out.scales.push_back(s);
  }
  return out;
}

TEST(SpadeLosses, HingeAndFeatureMatchingByHand) {
  const auto fake = output_of({{1, 2}, {3, 4}}, {{0.5f, 2.f}, {-1.f}});
  const auto real = output_of({{0, 0}, {0, 0}}, {{0.f}, {0.f}});
  // Feature matching: (|1| + |2| + |3| + |4|) / 2 scales = 5; the logits are not features.
  EXPECT_NEAR(train::feature_matching_loss(fake, real).item<double>(), 5.0, 1e-6);
  const train::GanLoss hinge("hinge");
  // D on "real": relu(1 - x) means 0.25 and 2, averaged over the scales.
  EXPECT_NEAR(hinge(fake, true, true).item<double>(), (0.25 + 2.0) / 2, 1e-6);
  // D on "fake": relu(1 + x) means 2.25 and 0.
  EXPECT_NEAR(hinge(fake, false, true).item<double>(), (2.25 + 0.0) / 2, 1e-6);
  // G: -mean(x) per scale, averaged: (-1.25 + 1) / 2.
  EXPECT_NEAR(hinge(fake, true, false).item<double>(), (-1.25 + 1.0) / 2, 1e-6);
}

train::TrainConfig tiny_config(const std::string& data) {
  train::TrainConfig c;
  c.task = train::kSpadeTask;
  c.dataroot = data;
  c.generator.arch = "resnet";
  c.generator.ngf = 4;
  c.generator.n_blocks = 1;
  c.generator.label_nc = 6;
  c.ndf = 4;
  return c.resolved();
}

TEST(SpadeTask, RegistryDefaultsAndTtur) {
  const auto c = tiny_config("unused");
  EXPECT_EQ(c.netD, "multiscale");
  EXPECT_EQ(c.gan_mode, "hinge");
  EXPECT_EQ(c.generator.input_nc, 7);
  EXPECT_EQ(train::discriminator_input_nc(c), 10);
  // Only label-map tasks write their fields.
  EXPECT_TRUE(c.to_json().contains("lambda_feat"));
  train::TrainConfig pix2pix;
  EXPECT_FALSE(pix2pix.to_json().contains("lambda_feat"));
  EXPECT_EQ(train::TrainConfig::from_json(c.to_json()).to_json(), c.to_json());
  train::TrainConfig no_labels = c;
  no_labels.generator.label_nc = 0;
  EXPECT_THROW(no_labels.validate_config(), ganlite::UsageError);

  torch::manual_seed(0);
  train::SpadeTask task(c, torch::kCPU);
  EXPECT_EQ(task.lr_factor("G"), 0.5);
  EXPECT_EQ(task.lr_factor("D"), 2.0);
  for (const auto& [name, optimizer] : task.optimizers()) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(optimizer->param_groups()[0].options());
    EXPECT_EQ(std::get<0>(o.betas()), 0.0) << name;
    EXPECT_EQ(std::get<1>(o.betas()), 0.9) << name;
    EXPECT_DOUBLE_EQ(o.lr(), c.lr * task.lr_factor(name)) << name;
  }
  auto no_ttur = c;
  no_ttur.no_ttur = true;
  train::SpadeTask plain(no_ttur, torch::kCPU);
  EXPECT_EQ(plain.lr_factor("D"), 1.0);
}

std::string tiny_train_args(const fs::path& data, const fs::path& run, int max_iters) {
  return "train --task spade --data '" + data.string() + "' --label-nc 6 --arch resnet --ngf 4 --n-blocks 1 --ndf 4 "
         "--preprocess fixed --crop-size 32 --aspect-ratio 2 --batch-size 2 --n-epochs 1 --n-epochs-decay 1 "
         "--max-iters " + std::to_string(max_iters) + " --threads 1 --workers 1 --log-freq 1 --sample-freq 2 "
         "--save-latest-freq 2 --seed 3 -q --out '" + run.string() + "'";
}

TEST(SpadeTask, TrainsResumesAndTranslatesFromTheCommandLine) {
  TempDir dir;
  const fs::path data = dir / "l2s";
  auto r = run_cli("make-dataset --kind labels2scenes --count 4 --test-count 1 --size 32 --seed 2 -q --out '" +
                   data.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  r = run_cli(tiny_train_args(data, dir / "whole", 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto log = read_jsonl(dir / "whole" / "metrics.jsonl");
  ASSERT_EQ(log.size(), 3u);
  for (const char* key : {"G_GAN", "G_feat", "D_real", "D_fake"}) EXPECT_TRUE(log.back().contains(key)) << key;
  EXPECT_FALSE(log.back().contains("G_VGG"));  // no --vgg-weights: off
  EXPECT_TRUE(fs::exists(dir / "whole" / "samples" / "step_000002.png"));
  const auto meta =
      ganlite::io::read_safetensors_header(dir / "whole" / "checkpoints" / "latest_net_D.safetensors").metadata;
  EXPECT_EQ(meta.at("arch"), "multiscale");
  EXPECT_EQ(meta.at("input_nc"), "10");

  // Two iterations, then resume to three: the same log as the uninterrupted run.
  r = run_cli(tiny_train_args(data, dir / "split", 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("train --resume '" + (dir / "split").string() + "' --max-iters 3 --threads 1 -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ganlite::testing::expect_same_metrics_log(dir / "whole", dir / "split");

  // translate: a class-id map (and its instance map) in, an image of its size out.
  const fs::path label = data / "test_labels" / "000000.png";
  r = run_cli("translate --model '" + (dir / "whole" / "checkpoints" / "latest_net_G.safetensors").string() +
              "' --input '" + label.string() + "' --instances '" + (data / "test_inst" / "000000.png").string() +
              "' --out '" + (dir / "out").string() + "' --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(ganlite::data::read_image_rgb(dir / "out" / "000000.png").size(), cv::Size(32, 32));

  // KA distillation with SPADE's losses: a fresh student reads the teacher's label maps; no L1.
  r = run_cli("distill --method ka --task spade --data '" + data.string() + "' --teacher '" +
              (dir / "whole" / "checkpoints" / "latest_net_G.safetensors").string() +
              "' --student-arch resnet --student-ngf 2 --ndf 4 --preprocess fixed --crop-size 32 --aspect-ratio 2 "
              "--batch-size 2 --n-epochs 1 --n-epochs-decay 0 --max-iters 2 --threads 1 --workers 1 --log-freq 1 -q "
              "--out '" + (dir / "ka").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ka_log = read_jsonl(dir / "ka" / "metrics.jsonl");
  ASSERT_EQ(ka_log.size(), 2u);
  EXPECT_EQ(ka_log.back().at("G_recon"), 0.0);
  EXPECT_LT(ka_log.back().at("G_ka").get<double>(), 0.0);
  EXPECT_GT(ka_log.back().at("G_gan").get<double>(), 1.0);  // feature matching (x10) is in the GAN terms

  // Without --label-nc the task says what it needs.
  r = run_cli("train --task spade --data '" + data.string() + "' --max-iters 1 -q --out '" + (dir / "bad").string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--label-nc"), std::string::npos) << r.output;
}

// fp32's unit roundoff.
constexpr double kFp32Eps = 1.0 / (1 << 24);

// A weight [5, 27] with the known spectrum 3, 1.5, 1, 0.5, 0.25: sigma_1 / sigma_2 = 2, so each
// power iteration shrinks u's and v's error by 2 and 40 of them leave only rounding.
TEST(SpectralNormConv, MatchesTheLargestSingularValueAfterTrainingForwards) {
  torch::manual_seed(4);
  nn::SpectralNormConv2d conv(3, 5, 3, 1, 1, /*bias=*/true);
  const auto f64 = torch::kFloat64;
  const auto q1 = std::get<0>(torch::linalg_qr(torch::randn({5, 5}, f64)));
  const auto q2 = std::get<0>(torch::linalg_qr(torch::randn({27, 5}, f64)));
  const auto spectrum = torch::tensor({3.0, 1.5, 1.0, 0.5, 0.25}, f64);
  {
    torch::NoGradGuard no_grad;
    conv->weight_orig.copy_(torch::mm(q1 * spectrum, q2.t()).reshape({5, 3, 3, 3}));
    conv->bias.copy_(torch::randn({5}));
  }
  // The independent sigma: the SVD of the stored fp32 weight, reshaped as spectral_norm does.
  const auto stored = conv->weight_orig.detach().to(f64);
  const double sigma = torch::linalg_svdvals(stored.reshape({5, -1})).max().item<double>();
  EXPECT_NEAR(sigma, 3.0, 1e-6);
  conv->train();
  const auto x = torch::randn({1, 3, 6, 6});
  for (int i = 0; i < 40; ++i) conv->forward(x);
  // u . W v sums 27 + 5 fp32 products of unit-scale terms: relative error below 64 eps.
  const auto expected = stored / sigma;
  const double weight_error = (conv->normalized_weight().to(f64) - expected).abs().max().item<double>();
  EXPECT_LE(weight_error, 64 * kFp32Eps);
  // Eval mode: the conv with that weight and the bias; 27 products per output of |x| <= max|x|.
  conv->eval();
  const auto y = conv->forward(x).to(f64);
  const auto reference = torch::conv2d(x.to(f64), expected, conv->bias.detach().to(f64), 1, 1);
  const double bound = 27 * x.abs().max().item<double>() * (weight_error + 64 * kFp32Eps);
  EXPECT_LE((y - reference).abs().max().item<double>(), bound);
}

nn::ArchConfig tiny_spade(bool spectral_norm) {
  nn::ArchConfig c;
  c.arch = "spade";
  c.ngf = 2;
  c.label_nc = 3;
  c.input_nc = 4;
  c.norm = "batch";
  c.spectral_norm = spectral_norm;
  return c;
}

torch::Tensor one_hot_labels(int64_t n, int64_t label_nc, int64_t h, int64_t w) {
  const auto labels = torch::randint(label_nc, {n, h, w});
  auto x = torch::zeros({n, label_nc + 1, h, w});
  x.narrow(1, 0, label_nc).copy_(torch::one_hot(labels, label_nc).permute({0, 3, 1, 2}));
  return x;
}

std::set<std::string> key_set(const torch::nn::Module& m) {
  std::set<std::string> keys;
  for (const auto& [name, t] : ganlite::io::state_dict(m)) keys.insert(name);
  return keys;
}

// The SPADE generator's eval output with spectral norm and a plain copy's (weights folded in fp64,
// stored in fp32): a relative weight error of eps per conv, through about 20 layers of unit gain.
void expect_folded_output_equal(nn::GeneratorImpl& spectral, nn::GeneratorImpl& folded) {
  spectral.eval();
  folded.eval();
  torch::NoGradGuard no_grad;
  const auto x = one_hot_labels(2, spectral.config().label_nc, 64, 64);
  const auto a = spectral.forward(x), b = folded.forward(x);
  EXPECT_GT(a.abs().max().item<double>(), 1e-3);  // not a vacuous comparison of zeros
  EXPECT_LE((a - b).abs().max().item<double>(), 256 * kFp32Eps);
}

TEST(SpectralNormSpadeGenerator, KeysAsNvlabsAndLoadsFolded) {
  TempDir dir;
  torch::manual_seed(5);
  auto spectral = nn::make_generator(tiny_spade(true));
  const auto keys = key_set(*spectral);
  for (const std::string k : {"head_0.conv_0.weight_orig", "head_0.conv_0.weight_u", "head_0.conv_0.weight_v",
                              "head_0.conv_0.bias", "up_0.conv_s.weight_orig", "up_0.conv_s.weight_v", "fc.weight",
                              "head_0.norm_0.mlp_shared.0.weight"}) {
    EXPECT_TRUE(keys.count(k)) << k;
  }
  EXPECT_FALSE(keys.count("head_0.conv_0.weight"));
  EXPECT_FALSE(keys.count("up_0.conv_s.bias"));
  const auto plain_keys = key_set(*nn::make_generator(tiny_spade(false)));
  EXPECT_EQ(keys.size(), plain_keys.size() + 2 * (7 * 2 + 4));  // u and v for 14 block convs and 4 shortcuts
  // Only spade takes the switch; a config without it reads and writes as before.
  auto resnet = tiny_spade(true);
  resnet.arch = "resnet";
  resnet.label_nc = 0;
  EXPECT_THROW(resnet.validate(), ganlite::UsageError);
  EXPECT_FALSE(tiny_spade(false).to_json().contains("spectral_norm"));
  EXPECT_EQ(nn::ArchConfig::from_json(tiny_spade(true).to_json()), tiny_spade(true));

  spectral->train();
  for (int i = 0; i < 3; ++i) spectral->forward(one_hot_labels(2, 3, 64, 64));  // moves u, v and BN stats
  const fs::path file = dir / "g.safetensors";
  ganlite::io::save_generator(file, *spectral);
  EXPECT_TRUE(ganlite::io::read_generator_arch(file).spectral_norm);  // saved as trained
  const auto folded = ganlite::io::load_generator(file);
  EXPECT_FALSE(folded->config().spectral_norm);
  EXPECT_EQ(key_set(*folded), plain_keys);
  expect_folded_output_equal(*spectral, *folded);
}

std::string spectral_train_args(const fs::path& data, const fs::path& run, int max_iters) {
  return "train --task spade --data '" + data.string() + "' --label-nc 6 --arch spade --ngf 2 --norm batch "
         "--spectral-norm-G --ndf 4 --preprocess fixed --crop-size 64 --aspect-ratio 1 --batch-size 2 "
         "--n-epochs 1 --n-epochs-decay 1 --max-iters " + std::to_string(max_iters) +
         " --no-validate --threads 1 --workers 1 --log-freq 1 --sample-freq 0 --save-latest-freq 2 --seed 3 -q "
         "--out '" + run.string() + "'";
}

std::map<std::string, torch::Tensor> tensors_of(const fs::path& file) {
  const auto contents = ganlite::io::load_safetensors(file);
  return {contents.tensors.begin(), contents.tensors.end()};
}

TEST(SpectralNormSpadeGenerator, TrainsResumesExactlyAndExportsFolded) {
  TempDir dir;
  const fs::path data = dir / "l2s";
  auto r = run_cli("make-dataset --kind labels2scenes --count 4 --test-count 1 --size 64 --seed 2 -q --out '" +
                   data.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli(spectral_train_args(data, dir / "whole", 3));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli(spectral_train_args(data, dir / "split", 2));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("train --resume '" + (dir / "split").string() + "' --max-iters 3 --threads 1 -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ganlite::testing::expect_same_metrics_log(dir / "whole", dir / "split");

  // The training checkpoint keeps weight_orig / u / v, and resuming continues bit for bit.
  const auto whole = tensors_of(dir / "whole" / "checkpoints" / "latest.ckpt.safetensors");
  const auto split = tensors_of(dir / "split" / "checkpoints" / "latest.ckpt.safetensors");
  for (const char* k : {"G.head_0.conv_0.weight_orig", "G.head_0.conv_0.weight_u", "G.up_3.conv_s.weight_v"}) {
    EXPECT_TRUE(whole.count(k)) << k;
  }
  ASSERT_EQ(whole.size(), split.size());
  for (const auto& [name, t] : whole) {
    ASSERT_TRUE(split.count(name)) << name;
    EXPECT_TRUE(torch::equal(t, split.at(name))) << name;
  }

  // latest_net_G is saved as trained; loading it folds to the plain generator, same eval output.
  const fs::path g_file = dir / "whole" / "checkpoints" / "latest_net_G.safetensors";
  const auto stored = ganlite::io::load_safetensors(g_file).tensors;
  EXPECT_TRUE(tensors_of(g_file).count("up_0.conv_1.weight_u"));
  auto spectral = nn::make_generator(ganlite::io::read_generator_arch(g_file));
  ganlite::io::load_state_dict(*spectral, stored);
  const auto folded = ganlite::io::load_generator(g_file);
  EXPECT_FALSE(folded->config().spectral_norm);
  EXPECT_TRUE(key_set(*folded).count("up_0.conv_1.weight"));
  expect_folded_output_equal(*spectral, *folded);
}

}  // namespace
