// Importing state dicts of the public PyTorch code: outputs equal PyTorch's (committed fixtures
// with PyTorch's output, regenerated live when Debian's python3 has torch), errors name the key.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/import_pth.h"
#include "ganlite/io/pth.h"
#include "ganlite/util/error.h"
#include "interop_test_helpers.h"
#include "test_support.h"
#include "tolerance.h"

using namespace ganlite;
using ganlite::testing::interop_fixture;

namespace {

struct Reference {
  torch::Tensor input, output;
};

Reference reference(const std::string& dir, const std::string& name) {
  const io::NamedTensors io = io::load_pth_state_dict(dir + "/" + name + "_io.pt");
  return {ganlite::testing::find_named(io, "input"), ganlite::testing::find_named(io, "output")};
}

// Imports DIR/NAME.pth and checks the output on PyTorch's input against PyTorch's output.
io::ImportResult expect_matches_pytorch(const std::string& dir, const std::string& name, const std::string& arch,
                                        io::ImportOptions options = {}) {
  options.arch = arch;
  io::ImportResult result = io::import_pth_generator(dir + "/" + name + ".pth", options);
  const Reference ref = reference(dir, name);
  EXPECT_TRUE(ref.input.defined() && ref.output.defined()) << name;
  torch::NoGradGuard no_grad;
  const torch::Tensor out = result.generator->forward(ref.input);
  EXPECT_EQ(out.sizes(), ref.output.sizes()) << name;
  // Two fp32 evaluations (PyTorch's kernels on the machine that wrote the fixture, LibTorch's here).
  const double scale = ganlite::testing::max_abs(ref.output);
  ganlite::testing::expect_close(out, ref.output, ganlite::testing::fp32_network_tolerance(*result.generator, scale),
                                 name);
  return result;
}

const std::string kFixtures = std::string(GANLITE_FIXTURES_DIR) + "/interop";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

io::NamedTensors fixture_tensors(const std::string& name) { return io::load_pth_state_dict(interop_fixture(name)); }

}  // namespace

TEST(Import, Pix2pixResnetBatchNormFromDataParallel) {
  auto r = expect_matches_pytorch(kFixtures, "resnet_pix2pix_batch", "resnet");
  const auto& c = r.generator->config();
  EXPECT_EQ(c.norm, "batch");
  EXPECT_EQ(c.ngf, 4);
  EXPECT_EQ(c.n_blocks, 2);
  EXPECT_TRUE(c.widths.empty());
  EXPECT_NE(r.layout.find("pytorch-CycleGAN-and-pix2pix"), std::string::npos) << r.layout;
  bool stripped = false;
  for (const auto& n : r.notes) stripped |= n.find("module.") != std::string::npos;
  EXPECT_TRUE(stripped);
}

TEST(Import, GanCompressionResnetWithDropoutIndexIsRemapped) {
  auto r = expect_matches_pytorch(kFixtures, "resnet_gancomp_instance", "resnet");
  EXPECT_EQ(r.generator->config().norm, "instance");
  EXPECT_EQ(r.generator->config().dropout, 0.0);
  EXPECT_NE(r.layout.find("gan-compression"), std::string::npos) << r.layout;
  // Same file into a model whose blocks hold a Dropout too (no remapping needed then).
  io::ImportOptions with_dropout;
  with_dropout.dropout = 0.5;
  auto d = expect_matches_pytorch(kFixtures, "resnet_gancomp_instance", "resnet", with_dropout);
  EXPECT_EQ(d.generator->config().dropout, 0.5);
}

TEST(Import, ZeroPaddingIsInferred) {
  auto r = expect_matches_pytorch(kFixtures, "resnet_zero_pad", "resnet");
  EXPECT_EQ(r.generator->config().padding, "zero");
  io::ImportOptions reflect;
  reflect.padding = "reflect";
  reflect.arch = "resnet";
  EXPECT_NE(error_of([&] { io::import_pth_generator(interop_fixture("resnet_zero_pad.pth"), reflect); })
                .find("--padding reflect"),
            std::string::npos);
}

TEST(Import, MobileResnet) {
  auto r = expect_matches_pytorch(kFixtures, "mobile_instance", "mobile_resnet");
  EXPECT_TRUE(r.generator->config().widths.empty());
}

TEST(Import, SubMobileResnetStudentWidths) {
  auto r = expect_matches_pytorch(kFixtures, "sub_mobile_instance", "mobile_resnet");
  const auto& w = r.generator->config().widths;
  EXPECT_EQ(w.stem, 4);
  EXPECT_EQ(w.down1, 8);
  EXPECT_EQ(w.trunk, 16);
  EXPECT_EQ(w.up1, 6);
  EXPECT_EQ(w.up2, 2);
  EXPECT_EQ(w.blocks, (std::vector<std::vector<int>>{{8}, {8}, {8}}));
  EXPECT_NE(r.layout.find("SubMobile"), std::string::npos);
}

TEST(Import, CatInceptionTeacher) {
  auto r = expect_matches_pytorch(kFixtures, "inception_teacher_affine", "inception");
  EXPECT_EQ(r.generator->config().norm, "instance_affine");
  EXPECT_TRUE(r.generator->config().widths.empty());
}

TEST(Import, CatPrunedStudentWithAbsentBranches) {
  auto r = expect_matches_pytorch(kFixtures, "inception_student_batch", "inception");
  const auto& w = r.generator->config().widths;
  EXPECT_EQ(w.blocks, (std::vector<std::vector<int>>{{0, 3, 1, 2, 0, 4}, {0, 0, 0, 0, 0, 0}, {5, 0, 2, 0, 1, 0}}));
  EXPECT_EQ(r.generator->config().norm, "batch");
}

TEST(Import, UnetInstanceNorm) {
  auto r = expect_matches_pytorch(kFixtures, "unet_instance", "unet");
  EXPECT_EQ(r.generator->config().num_downs, 6);
  EXPECT_EQ(r.generator->config().ngf, 2);
  EXPECT_EQ(r.generator->config().norm, "instance");
}

// The nn module's fixtures (one dict with the state dict, __input__ and __output__).
TEST(Import, NnFixturesOfThePublicModels) {
  struct Case {
    const char* file;
    const char* arch;
    const char* norm;
  };
  for (const Case& c : {Case{"resnet_ngf4_b2_numerics.pt", "resnet", "instance_affine"},
                        Case{"mobile_resnet_ngf4_b2_numerics.pt", "mobile_resnet", "batch"},
                        Case{"inception_ngf4_b3_numerics.pt", "inception", "instance_affine"},
                        Case{"unet_ngf2_d5_numerics.pt", "unet", "batch"}}) {
    const io::NamedTensors all = io::load_pth_state_dict(std::string(GANLITE_FIXTURES_DIR) + "/nn/" + c.file);
    io::NamedTensors state;
    for (const auto& kv : all) {
      if (kv.first.rfind("__", 0) != 0) state.push_back(kv);
    }
    io::ImportOptions options;
    options.arch = c.arch;
    const io::ImportResult r = io::import_generator_state_dict(state, options, c.file);
    EXPECT_EQ(r.generator->config().norm, c.norm) << c.file;
    torch::NoGradGuard no_grad;
    const torch::Tensor out = r.generator->forward(ganlite::testing::find_named(all, "__input__"));
    const torch::Tensor want = ganlite::testing::find_named(all, "__output__");
    ganlite::testing::expect_close(
        out, want, ganlite::testing::fp32_network_tolerance(*r.generator, ganlite::testing::max_abs(want)), c.file);
  }
}

TEST(Import, MissingKeyIsNamed) {
  io::NamedTensors t = fixture_tensors("resnet_gancomp_instance.pth");
  t.erase(std::remove_if(t.begin(), t.end(), [](const auto& kv) { return kv.first == "model.11.conv_block.6.bias"; }),
          t.end());
  io::ImportOptions o;
  o.arch = "resnet";
  const std::string msg = error_of([&] { io::import_generator_state_dict(t, o, "x.pth"); });
  EXPECT_NE(msg.find("missing key 'model.11.conv_block.6.bias'"), std::string::npos) << msg;
}

TEST(Import, ExtraKeyIsNamed) {
  io::NamedTensors t = fixture_tensors("mobile_instance.pth");
  t.emplace_back("model.10.extra.weight", torch::zeros({2}));
  io::ImportOptions o;
  o.arch = "mobile_resnet";
  const std::string msg = error_of([&] { io::import_generator_state_dict(t, o, "x.pth"); });
  EXPECT_NE(msg.find("unexpected key 'model.10.extra.weight'"), std::string::npos) << msg;
}

TEST(Import, ShapeMismatchIsNamed) {
  io::NamedTensors t = fixture_tensors("inception_student_batch.pth");
  for (auto& kv : t) {
    if (kv.first == "features.0.dw_ops.1.2.1.running_var") kv.second = torch::ones({7});
  }
  io::ImportOptions o;
  o.arch = "inception";
  const std::string msg = error_of([&] { io::import_generator_state_dict(t, o, "x.pth"); });
  EXPECT_NE(msg.find("shape mismatch for key 'features.0.dw_ops.1.2.1.running_var'"), std::string::npos) << msg;
}

TEST(Import, LegacyFileGetsTheReadersExplanation) {
  const std::string msg = error_of([] {
    io::ImportOptions o;
    o.arch = "resnet";
    io::import_pth_generator(interop_fixture("legacy_resnet.pth"), o);
  });
  EXPECT_NE(msg.find("legacy"), std::string::npos) << msg;
}

TEST(Import, WrongArchNamesTheMissingKey) {
  io::ImportOptions o;
  o.arch = "inception";
  const std::string msg = error_of([&] { io::import_pth_generator(interop_fixture("mobile_instance.pth"), o); });
  EXPECT_NE(msg.find("'down_sampling.1.weight'"), std::string::npos) << msg;
  o.arch = "resnet";  // a mobile file as a plain resnet
  const std::string msg2 = error_of([&] { io::import_pth_generator(interop_fixture("mobile_instance.pth"), o); });
  EXPECT_NE(msg2.find("model.10.conv_block"), std::string::npos) << msg2;
  o.arch = "vgg";
  EXPECT_THROW(io::import_pth_generator(interop_fixture("mobile_instance.pth"), o), UsageError);
}

TEST(Import, OptionsThatContradictTheFileAreErrors) {
  io::ImportOptions o;
  o.arch = "resnet";
  o.n_blocks = 9;
  const std::string msg = error_of([&] { io::import_pth_generator(interop_fixture("resnet_zero_pad.pth"), o); });
  EXPECT_NE(msg.find("--n-blocks 9"), std::string::npos) << msg;
}

// A SubMobileResnetGenerator with batch norms over the middle width cannot be represented.
TEST(Import, UnrepresentableSubMobileNormIsExplained) {
  const io::NamedTensors all =
      io::load_pth_state_dict(std::string(GANLITE_FIXTURES_DIR) + "/nn/mobile_resnet_ngf4_b2_numerics.pt");
  io::NamedTensors t;
  for (const auto& kv : all) {
    if (kv.first.rfind("__", 0) == 0) continue;
    const bool second_norm = kv.first.rfind("model.10.conv_block.7.", 0) == 0 && kv.second.dim() == 1;
    t.emplace_back(kv.first, second_norm ? kv.second.narrow(0, 0, 8).clone() : kv.second);
  }
  io::ImportOptions o;
  o.arch = "mobile_resnet";
  const std::string msg = error_of([&] { io::import_generator_state_dict(t, o, "x.pth"); });
  EXPECT_NE(msg.find("cannot be represented"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.10.conv_block.7.weight"), std::string::npos) << msg;
}

TEST(Import, SavedFileReloadsWithTheSameOutputs) {
  ganlite::testing::TempDir dir;
  io::ImportOptions o;
  o.arch = "inception";
  auto r = io::import_pth_generator(interop_fixture("inception_student_batch.pth"), o);
  io::save_generator(dir / "g.safetensors", *r.generator);
  auto g = io::load_generator(dir / "g.safetensors");
  g->eval();
  const Reference ref = reference(kFixtures, "inception_student_batch");
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(g->forward(ref.input), r.generator->forward(ref.input)));
}

TEST(ImportCli, WritesAGeneratorAndReportsJson) {
  ganlite::testing::TempDir dir;
  const auto out = dir / "g.safetensors";
  const auto res = ganlite::testing::run_cli("import --checkpoint '" + interop_fixture("sub_mobile_instance.pth") +
                                             "' --arch mobile_resnet --out '" + out.string() + "' --json");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  const auto j = nlohmann::json::parse(res.output.substr(res.output.find('{')));
  EXPECT_EQ(j["config"]["arch"], "mobile_resnet");
  EXPECT_EQ(j["config"]["widths"]["trunk"], 16);
  EXPECT_TRUE(std::filesystem::exists(out));
  auto g = io::load_generator(out);
  EXPECT_EQ(g->config().widths.up1, 6);

  const auto bad = ganlite::testing::run_cli("import --checkpoint '" + interop_fixture("sub_mobile_instance.pth") +
                                             "' --arch mobile --out '" + out.string() + "'");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  const auto legacy = ganlite::testing::run_cli("import --checkpoint '" + interop_fixture("legacy_resnet.pth") +
                                                "' --arch resnet --out '" + (dir / "l.safetensors").string() + "'");
  EXPECT_EQ(legacy.exit_code, 1) << legacy.output;
  EXPECT_NE(legacy.output.find("legacy"), std::string::npos) << legacy.output;
}

// The fixture script run live: fresh state dicts from PyTorch itself, every layout imported.
TEST(Import, LiveFromPyTorch) {
  if (!ganlite::testing::python_has_module("torch")) {
    GTEST_SKIP() << "Debian's python3 with torch is not installed: the committed fixtures cover this";
  }
  ganlite::testing::TempDir dir;
  const auto res = ganlite::testing::run_command(ganlite::testing::system_python() + " '" +
                                                 interop_fixture("make_fixtures.py") + "' '" + dir.path().string() +
                                                 "' 2>&1");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  const std::string d = dir.path().string();
  expect_matches_pytorch(d, "resnet_pix2pix_batch", "resnet");
  expect_matches_pytorch(d, "resnet_gancomp_instance", "resnet");
  expect_matches_pytorch(d, "resnet_zero_pad", "resnet");
  expect_matches_pytorch(d, "mobile_instance", "mobile_resnet");
  expect_matches_pytorch(d, "sub_mobile_instance", "mobile_resnet");
  expect_matches_pytorch(d, "inception_teacher_affine", "inception");
  expect_matches_pytorch(d, "inception_student_batch", "inception");
  expect_matches_pytorch(d, "unet_instance", "unet");
}
