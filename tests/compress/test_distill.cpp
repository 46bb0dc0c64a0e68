// The distillation task and its terms on tiny inception generators (ngf 4-8, 3 blocks, 32x32):
// method parsing and defaults, gradient flow (student and adaptors yes, teacher never), the KA
// term raising the alignment, the CycleGAN recon target T(A), --restore-d, batch-size refusal.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <variant>

#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_task.h"
#include "ganlite/compress/kernel_alignment.h"
#include "ganlite/io/checkpoint.h"
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

template <typename F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(DistillMethods, ParsesCombinationsAndRefusesBadOnes) {
  EXPECT_EQ(compress::parse_distill_methods("ka"), (std::vector<std::string>{"ka"}));
  EXPECT_EQ(compress::parse_distill_methods("ka+mse+wkd"), (std::vector<std::string>{"ka", "mse", "wkd"}));
  const auto unknown = usage_error_of([] { compress::parse_distill_methods("ka+foo"); });
  EXPECT_NE(unknown.find("'foo'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("ka, mse, wkd"), std::string::npos) << unknown;
  EXPECT_EQ(compress::parse_distill_methods("dcd"), (std::vector<std::string>{"dcd"}));
  EXPECT_NE(usage_error_of([] { compress::parse_distill_methods("ka+ka"); }).find("twice"), std::string::npos);
  EXPECT_NE(usage_error_of([] { compress::parse_distill_methods("ka+"); }).find("empty"), std::string::npos);
  EXPECT_NE(usage_error_of([] { compress::parse_distill_methods(""); }).find("empty"), std::string::npos);
}

TEST(DistillMethods, PaperDefaultsAndExplicitWeights) {
  compress::DistillConfig d;
  d.methods = {"ka"};
  auto p = d.resolved("pix2pix");
  EXPECT_EQ(p.lambda_recon, 100.0);
  EXPECT_EQ(p.weights.at("ka"), 1.0);
  EXPECT_EQ(d.resolved("cyclegan").lambda_recon, 5.0);

  d.methods = {"mse"};
  auto c = d.resolved("cyclegan");
  EXPECT_EQ(c.lambda_recon, 10.0);
  EXPECT_EQ(c.weights.at("mse"), 0.01);

  d.methods = {"ka", "mse", "wkd"};
  d.weights = {{"mse", 0.5}};
  d.lambda_distill = 0.25;
  auto k = d.resolved("pix2pix");
  EXPECT_EQ(k.weights.at("ka"), 0.25);
  EXPECT_EQ(k.weights.at("mse"), 0.5);
  EXPECT_EQ(k.weights.at("wkd"), 0.4);

  compress::DistillConfig w;
  w.methods = {"ka"};
  w.weights = {{"mse", 1.0}};
  w.teacher = w.student = "x";
  EXPECT_NE(usage_error_of([&] { w.validate(4); }).find("'mse'"), std::string::npos);
}

// A value of `f`'s type away from its default and within its bounds and choices.
compress::OptionValue non_default_value(const compress::OptionField& f) {
  switch (f.type) {
    case compress::OptionType::Integer: {
      const int64_t d = std::get<int64_t>(f.default_value);
      return d + 1 <= static_cast<int64_t>(f.max) ? d + 1 : d - 1;
    }
    case compress::OptionType::Number: {
      const double d = std::get<double>(f.default_value);
      return d + 0.375 <= f.max ? d + 0.375 : d - 0.375;
    }
    case compress::OptionType::Text:
      for (const auto& c : f.choices) {
        if (c != std::get<std::string>(f.default_value)) return c;
      }
      return "runs/t/" + f.key + ".safetensors";
  }
  return {};
}

// Every field set away from its default, written, read back (resume rebuilds the task from it),
// compared field by field and found under its own key: a field left out, read from another key
// or misspelt fails. The methods' options come from their field tables, so a new method's are
// checked too; the keys of runs written before the registry must stay.
TEST(DistillMethods, JsonRoundTripKeepsEveryFieldUnderItsOwnKey) {
  const compress::DistillConfig defaults;
  compress::DistillConfig c;
  c.methods = {"dcd", "wkd"};
  c.weights = {{"dcd", 0.75}, {"wkd", 0.3}};
  c.teacher = "runs/t/latest_net_G.safetensors";
  c.student = "student.safetensors";
  c.restore_d = "runs/t/latest_net_D.safetensors";
  c.lambda_recon = 20.0;
  c.lambda_gan = 2.0;
  c.lambda_distill = 0.125;
  c.student_ndf = 24;
  c.prune_d_ratio = 0.25;
  std::set<std::string> expected_keys{"methods",      "weights",    "teacher",        "student",     "restore_d",
                                      "lambda_recon", "lambda_gan", "lambda_distill", "student_ndf", "prune_d_ratio"};
  std::vector<const compress::OptionField*> option_fields;
  for (const auto& m : compress::distill_methods()) {
    for (const auto& f : m.options) {
      c.set_option(f.key, non_default_value(f));
      option_fields.push_back(&f);
      expected_keys.insert(f.key);
    }
  }
  for (const char* key : {"wkd_levels", "wkd_distance", "teacher_ndf", "dcd_restore_teacher_d", "lambda_dcd_gan",
                          "vgg_weights", "lambda_vgg_feature", "lambda_vgg_style"}) {
    EXPECT_TRUE(expected_keys.count(key)) << key << ": runs written before the registry store it";
  }

  const nlohmann::json j = c.to_json();
  std::set<std::string> keys;
  for (const auto& item : j.items()) keys.insert(item.key());
  EXPECT_EQ(keys, expected_keys);

  const auto back = compress::DistillConfig::from_json_string(c.to_json_string(), "mem.json");
  size_t checked = 0;
  auto field = [&](const char* key, auto member) {
    SCOPED_TRACE(key);
    EXPECT_NE(c.*member, defaults.*member) << "the test must set a non-default value";
    EXPECT_EQ(j.at(key), nlohmann::json(c.*member));
    EXPECT_EQ(back.*member, c.*member);
    ++checked;
  };
  using D = compress::DistillConfig;
  field("methods", &D::methods);
  field("weights", &D::weights);
  field("teacher", &D::teacher);
  field("student", &D::student);
  field("restore_d", &D::restore_d);
  field("lambda_recon", &D::lambda_recon);
  field("lambda_gan", &D::lambda_gan);
  field("lambda_distill", &D::lambda_distill);
  field("student_ndf", &D::student_ndf);
  field("prune_d_ratio", &D::prune_d_ratio);
  for (const auto* f : option_fields) {
    SCOPED_TRACE(f->key);
    const auto& value = c.option(f->key);
    EXPECT_NE(value, defaults.option(f->key)) << "the test must set a non-default value";
    std::visit([&](const auto& v) { EXPECT_EQ(j.at(f->key), nlohmann::json(v)); }, value);
    EXPECT_EQ(back.option(f->key), value);
    ++checked;
  }
  EXPECT_EQ(checked, expected_keys.size());
  EXPECT_EQ(back.to_json_string(), c.to_json_string());
}

// A run's config.json: the TrainConfig's keys with the distillation settings under "distill",
// typed on both sides of the file. A plain training config is refused as a distillation run, and
// a distillation config as a plain one (`ganlite train` says to use `ganlite distill`).
TEST(DistillRunConfig, JsonIsTheTrainConfigWithTheDistillSection) {
  compress::DistillRunConfig c;
  c.train.dataroot = "data";
  c.train.ndf = 24;
  c.distill.methods = {"ka", "wkd"};
  c.distill.weights = {{"ka", 0.5}};
  c.distill.teacher = "t.safetensors";
  c.distill.set_option("wkd_levels", int64_t{2});
  const nlohmann::json j = c.to_json();
  nlohmann::json train_part = j;
  ASSERT_EQ(train_part.erase("distill"), 1u);
  EXPECT_EQ(train_part, c.train.to_json());
  EXPECT_EQ(j.at("distill"), c.distill.to_json());
  EXPECT_EQ(c.to_json_string(), j.dump(2) + "\n");

  TempDir dir;
  const auto path = dir / "config.json";
  write_text_file(path, c.to_json_string());
  const auto back = compress::DistillRunConfig::load(path.string());
  EXPECT_EQ(back.train.ndf, 24);
  EXPECT_EQ(back.train.dataroot, "data");
  EXPECT_EQ(back.distill.methods, c.distill.methods);
  EXPECT_EQ(back.distill.weights, c.distill.weights);
  EXPECT_EQ(back.distill.option("wkd_levels"), compress::OptionValue{int64_t{2}});
  EXPECT_EQ(back.to_json_string(), c.to_json_string());

  const auto plain = usage_error_of([&] { compress::DistillRunConfig::from_json(c.train.to_json(), "plain.json"); });
  EXPECT_NE(plain.find("'plain.json' is not a distillation run"), std::string::npos) << plain;
  const auto refused = usage_error_of([&] { train::TrainConfig::from_json(j, "run/config.json"); });
  EXPECT_NE(refused.find("run/config.json: this config describes a distillation run"), std::string::npos) << refused;
  EXPECT_NE(refused.find("`ganlite distill`"), std::string::npos) << refused;
  // A bad field in either part names the file and the field.
  auto bad = j;
  bad["distill"]["wkd_levels"] = 99;
  const auto bad_distill = usage_error_of([&] { compress::DistillRunConfig::from_json(bad, "run/config.json"); });
  EXPECT_NE(bad_distill.find("run/config.json: 'distill.wkd_levels'"), std::string::npos) << bad_distill;
  bad = j;
  bad["ndf"] = -1;
  const auto bad_train = usage_error_of([&] { compress::DistillRunConfig::from_json(bad, "run/config.json"); });
  EXPECT_NE(bad_train.find("run/config.json: 'ndf'"), std::string::npos) << bad_train;
}

TEST(DistillTask, BatchOfOneIsRefusedForKaWithTheReason) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  const auto msg = usage_error_of([&] { compress::make_distill_run_config(base_config("pix2pix", 1), distill(p, "mse+ka")); });
  EXPECT_NE(msg.find("--batch-size >= 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("KA is always 1"), std::string::npos) << msg;
  // MSE alone works with one image per batch.
  EXPECT_NO_THROW(compress::make_distill_run_config(base_config("pix2pix", 1), distill(p, "mse")));
}

TEST(DistillTask, GradientsReachStudentAndAdaptorsButNeverTheTeacher) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  const auto config = compress::make_distill_run_config(base_config("pix2pix", 2), distill(p, "ka+mse"));
  EXPECT_EQ(config.train.generator, io::load_generator(p.student)->config());
  compress::DistillTask task(config, torch::kCPU);
  ASSERT_EQ(task.terms().size(), 2u);
  auto& adaptors = *task.terms()[1];
  ASSERT_TRUE(adaptors.has_student_side_parameters());

  const auto teacher_before = snapshot(*task.teacher());
  const auto student_before = snapshot(*task.student());
  const auto adaptors_before = snapshot(adaptors);
  const auto batch = fixed_batch(2);
  train::Losses losses;
  for (int i = 0; i < 2; ++i) losses = task.train_step(batch);

  std::vector<std::string> names;
  for (const auto& [n, v] : losses) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"G_gan", "G_recon", "G_ka", "G_mse", "D_real", "D_fake"}));

  for (const auto& [k, t] : io::state_dict(*task.teacher())) EXPECT_TRUE(torch::equal(t, teacher_before.at(k))) << k;
  for (const auto& param : task.teacher()->parameters()) {
    EXPECT_FALSE(param.requires_grad());
    EXPECT_FALSE(param.grad().defined());
  }
  EXPECT_FALSE(task.teacher()->is_training());
  int changed = 0;
  for (const auto& item : task.student()->named_parameters()) {
    changed += !torch::equal(item.value(), student_before.at(item.key()));
  }
  EXPECT_GT(changed, static_cast<int>(task.student()->parameters().size()) / 2);
  for (const auto& item : adaptors.named_parameters()) {
    const auto& t = item.value();
    EXPECT_TRUE(t.grad().defined() && t.grad().abs().sum().item<double>() > 0) << item.key();
    EXPECT_FALSE(torch::equal(t, adaptors_before.at(item.key()))) << item.key();
  }
  // The adaptors are checkpointed with the task, the teacher too (frozen).
  std::vector<std::string> module_names;
  for (const auto& [n, m] : task.modules()) module_names.push_back(n);
  EXPECT_EQ(module_names, (std::vector<std::string>{"G", "D", "T", "A_mse"}));
}

// KA by its definition (CAT, methods.md 3.2), in double precision and without the library:
// <G_s, G_t>_F / (|G_s|_F |G_t|_F), G = X X^T of the batch's flattened features.
double kernel_alignment_by_definition(const torch::Tensor& s, const torch::Tensor& t) {
  const auto xs = s.detach().to(torch::kFloat64).reshape({s.size(0), -1});
  const auto xt = t.detach().to(torch::kFloat64).reshape({t.size(0), -1});
  const auto gs = xs.mm(xs.t());
  const auto gt = xt.mm(xt.t());
  return ((gs * gt).sum() / (gs.norm() * gt.norm())).item<double>();
}

TEST(DistillTask, KaTermAlone_IsMinusTheWeightedSumOfTheTapAlignmentsAndRaisesThem) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  auto d = distill(p, "ka");
  d.lambda_gan = 0;
  d.lambda_recon = 0;
  d.weights = {{"ka", 0.5}};
  compress::DistillTask task(compress::make_distill_run_config(base_config("pix2pix", 4), d), torch::kCPU);
  const auto batch = fixed_batch(4);

  // The first step sees the files' weights: the same taps, student in training mode as in the step.
  auto student = io::load_generator(p.student);
  auto teacher = io::load_generator(p.teacher);
  student->train();
  teacher->eval();
  double sum_ka = 0.0, tolerance = 0.0;
  {
    torch::NoGradGuard no_grad;
    const auto s = student->forward_with_taps(batch.a);
    const auto t = teacher->forward_with_taps(batch.a);
    ASSERT_EQ(s.taps.size(), 4u);
    ASSERT_EQ(t.taps.size(), 4u);
    // The step computes the taps and KA in fp32. A relative change r of the features moves KA by
    // at most ~4r (the Gram matrices by 2r, the ratio by twice that); the taps are within
    // eps32 * sum(K) of exact (tolerance.h), KA's own sums over C*H*W features within eps32 * C*H*W.
    const double taps_error = kFp32Epsilon * static_cast<double>(summed_reduction_length(*student) +
                                                                 summed_reduction_length(*teacher));
    for (size_t i = 0; i < s.taps.size(); ++i) {
      const double ka = kernel_alignment_by_definition(s.taps[i], t.taps[i]);
      EXPECT_GT(ka, 0.0) << "tap " << i;
      sum_ka += ka;
      const double features = static_cast<double>(std::max(s.taps[i][0].numel(), t.taps[i][0].numel()));
      tolerance += 0.5 * (4.0 * taps_error + 3.0 * kFp32Epsilon * features);
    }
  }
  const double first = loss_of(task.train_step(batch), "G_ka");
  EXPECT_NEAR(first, -0.5 * sum_ka, tolerance) << "tolerance " << tolerance;
  // The bound separates this value from what a term ignoring the student (KA 1 at every tap) gives.
  EXPECT_GT(0.5 * (4.0 - sum_ka), 10.0 * tolerance);
  double last = first;
  for (int i = 0; i < 8; ++i) last = loss_of(task.train_step(batch), "G_ka");
  EXPECT_LT(last, first - 1e-3) << "sum of KA should rise: " << -first << " -> " << -last;
}

TEST(DistillTask, CycleGanReconstructsTheTeachersOutput) {
  TempDir dir;
  const auto p = make_pair_files(dir, "instance_affine");
  auto d = distill(p, "wkd");
  d.weights = {{"wkd", 0.0}};
  const auto config = compress::make_distill_run_config(base_config("cyclegan", 2), d);
  compress::DistillTask task(config, torch::kCPU);
  EXPECT_EQ(task.discriminator_metadata().at("input_nc"), "3");  // unconditional D
  const auto batch = fixed_batch(2);
  torch::Tensor s, t;
  {
    torch::NoGradGuard no_grad;
    s = task.student()->forward(batch.a);
    t = task.teacher()->forward(batch.a);
  }
  const double to_teacher = 5.0 * torch::l1_loss(s, t).item<double>();
  const double to_b = 5.0 * torch::l1_loss(s, batch.b).item<double>();
  ASSERT_GT(std::abs(to_teacher - to_b), 1e-3);
  const auto losses = task.train_step(batch);
  EXPECT_NEAR(loss_of(losses, "G_recon"), to_teacher, 1e-5);
  EXPECT_EQ(loss_of(losses, "G_wkd"), 0.0);
}

TEST(DistillTask, RestoreDLoadsTheTeachersDiscriminator) {
  TempDir dir;
  const auto p = make_pair_files(dir, "batch");
  auto base = base_config("pix2pix", 2);
  torch::manual_seed(99);
  auto teacher_d = train::build_discriminator(base.resolved(), 6, torch::kCPU);
  auto meta = train::discriminator_metadata_for(base.resolved(), 6);
  meta[io::kMetaFormat] = "ganlite";
  const auto d_file = dir / "latest_net_D.safetensors";
  io::save_module(d_file, *teacher_d, meta);

  auto d = distill(p, "ka");
  d.restore_d = d_file.string();
  compress::DistillTask task(compress::make_distill_run_config(base, d), torch::kCPU);
  const auto loaded = snapshot(*task.discriminator());
  for (const auto& [k, t] : io::state_dict(*teacher_d)) EXPECT_TRUE(torch::equal(t, loaded.at(k))) << k;

  // A resumed task takes D from its checkpoint instead: the file is not read.
  compress::DistillTask resumed(compress::make_distill_run_config(base, d), torch::kCPU, /*fresh_start=*/false);
  EXPECT_FALSE(torch::equal(resumed.discriminator()->parameters()[0], teacher_d->parameters()[0]));

  // Another width is refused with the reason.
  base.ndf = 8;
  try {
    compress::DistillTask wrong(compress::make_distill_run_config(base, d), torch::kCPU);
    ADD_FAILURE() << "a D of another width was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--restore-d"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--ndf"), std::string::npos) << e.what();
  }
}

namespace {

// A term of `method` as a run builds it from a config with `option` set (none when key empty).
std::shared_ptr<compress::DistillTerm> term_with(const std::string& method, const std::string& key,
                                                 compress::OptionValue value, std::vector<int64_t> student_widths = {},
                                                 std::vector<int64_t> teacher_widths = {}) {
  compress::DistillConfig config;
  config.methods = {method};
  if (!key.empty()) config.set_option(key, std::move(value));
  const auto resolved = config.resolved("pix2pix");
  compress::DistillContext context;
  context.task = "pix2pix";
  context.config = &resolved;
  context.student_tap_channels = std::move(student_widths);
  context.teacher_tap_channels = std::move(teacher_widths);
  return compress::make_distill_term(method, context);
}

}  // namespace

// --ka-chunks 4: per tap, the sum of the 4 chunks' KAs, as CAT's 4-GPU DataParallel computes it
// (docs/fidelity.md, "CAT's KA per GPU chunk"); checked against CAT's formula in double per chunk.
TEST(DistillTask, KaChunksSumTheAlignmentsOfTheBatchsChunksPerTap) {
  const auto* field = compress::distill_method("ka").field("ka_chunks");
  ASSERT_NE(field, nullptr);
  EXPECT_EQ(field->flag, "--ka-chunks");
  EXPECT_EQ(std::get<int64_t>(field->default_value), 1);  // one KA over the batch, as before

  torch::manual_seed(5);
  const int64_t n = 8;  // 4 chunks of 2
  std::vector<torch::Tensor> s_taps, t_taps;
  for (int i = 0; i < 2; ++i) {
    s_taps.push_back(torch::randn({n, 3, 4, 4}).relu());
    t_taps.push_back(torch::randn({n, 6, 4, 4}).relu());
  }
  const auto image = torch::zeros({n, 3, 8, 8});
  const nn::GeneratorOutput so{image, s_taps}, to{image, t_taps};
  const compress::DistillInputs inputs{image, image, &so, &to};
  double expected = 0, whole = 0, tolerance = 0;
  for (int i = 0; i < 2; ++i) {
    whole -= kernel_alignment_by_definition(s_taps[i], t_taps[i]);
    for (int64_t c = 0; c < 4; ++c) {
      expected -= kernel_alignment_by_definition(s_taps[i].narrow(0, 2 * c, 2), t_taps[i].narrow(0, 2 * c, 2));
      // As in KernelAlignmentChunks: sums of D products and of n^2 Gram products, twice, x4 room.
      tolerance += 4.0 * kFp32Epsilon * static_cast<double>(2 * (48 + 96) + 3 * 4);
    }
  }
  const double chunked = term_with("ka", "ka_chunks", int64_t{4})->loss(inputs).item<double>();
  EXPECT_NEAR(chunked, expected, tolerance);
  EXPECT_GT(std::abs(expected - whole), 100 * tolerance);
  // The default is the current single KA, bit for bit.
  const auto by_default = term_with("ka", "", int64_t{0})->loss(inputs);
  const auto one_chunk = term_with("ka", "ka_chunks", int64_t{1})->loss(inputs);
  EXPECT_TRUE(torch::equal(by_default, one_chunk));
  EXPECT_NEAR(by_default.item<double>(), whole, tolerance);

  // Refused without ka among the methods, and out of range.
  compress::DistillConfig w;
  w.methods = {"mse"};
  w.teacher = w.student = "x";
  w.set_option("ka_chunks", int64_t{4});
  EXPECT_NE(usage_error_of([&] { w.validate(4); }).find("--ka-chunks belongs to ka"), std::string::npos);
  w.methods = {"ka"};
  EXPECT_NO_THROW(w.validate(4));
  w.set_option("ka_chunks", int64_t{0});
  EXPECT_NE(usage_error_of([&] { w.validate(4); }).find("--ka-chunks must be in [1, 1024]"), std::string::npos);
}

// GAN Compression's adaptors go through networks.init_net (mit-han-lab/gan-compression,
// distillers/base_resnet_distiller.py): weights N(0, 0.02), biases 0. PyTorch's default for a
// 1x1 conv from 16 channels would be U(+-1/4): std 0.144 and non-zero biases.
TEST(DistillTask, MseAdaptorsStartAsGanCompressionsInitNet) {
  const std::vector<int64_t> student{16, 16, 16, 16}, teacher{32, 32, 32, 32};
  torch::manual_seed(11);
  const auto term = term_with("mse", "", int64_t{0}, student, teacher);
  std::vector<torch::Tensor> weights;
  for (const auto& item : term->named_parameters()) {
    if (item.key().find("bias") != std::string::npos) {
      EXPECT_TRUE(torch::equal(item.value(), torch::zeros_like(item.value()))) << item.key();
    } else {
      weights.push_back(item.value().detach().flatten());
    }
  }
  ASSERT_EQ(weights.size(), 4u);
  const auto w = torch::cat(weights).to(torch::kFloat64);
  const double count = static_cast<double>(w.numel());  // 4 x 16 x 32 = 2048 draws
  // For n draws of N(0, s^2): the sample mean has sd s / sqrt(n), the sample std ~ s / sqrt(2n).
  // Six of those: a seed that fails is a 1-in-10^8 event; the default init's std is 60 bounds off.
  const double sigma = 0.02;
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 6 * sigma / std::sqrt(count));
  EXPECT_NEAR(w.std().item<double>(), sigma, 6 * sigma / std::sqrt(2 * count));

  // Seeded: the same seed gives the same adaptors.
  torch::manual_seed(11);
  const auto again = term_with("mse", "", int64_t{0}, student, teacher);
  const auto a = again->named_parameters();
  for (const auto& item : term->named_parameters()) EXPECT_TRUE(torch::equal(item.value(), a[item.key()])) << item.key();
}
