// PyTorch .pth state dicts: the committed fixture (Module.state_dict() saved by torch 1.13: an
// OrderedDict with _metadata), our writer, legacy files, malformed files, and Python interop
// both ways when /usr/bin/python3 has torch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/io/pth.h"
#include "ganlite/io/zip.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::Error;
using ganlite::testing::TempDir;

namespace {

const fs::path kPthFixtures = fs::path(GANLITE_FIXTURES_DIR) / "metrics";

std::vector<std::string> names_of(const ganlite::io::NamedTensors& tensors) {
  std::vector<std::string> names;
  for (const auto& [name, t] : tensors) names.push_back(name);
  return names;
}

std::string run_python(const TempDir& dir, const std::string& script) {
  ganlite::testing::write_text_file(dir / "script.py", script);
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " " +
                                               (dir / "script.py").string() + " " + dir.path().string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

}  // namespace

TEST(Pth, ReadsTorch113StateDictFixtureInFileOrder) {
  const auto sd = ganlite::io::load_pth_state_dict(kPthFixtures / "torch113_state_dict.pth");
  const std::vector<std::string> expected{"0.weight",      "0.bias",         "1.weight",           "1.bias",
                                          "1.running_mean", "1.running_var", "1.num_batches_tracked"};
  ASSERT_EQ(names_of(sd), expected);
  EXPECT_TRUE(torch::equal(sd[0].second, torch::arange(6, torch::kFloat32).reshape({3, 2, 1, 1})));
  EXPECT_TRUE(torch::equal(sd[1].second, torch::tensor({0.5f, -0.5f, 1.5f})));
  EXPECT_TRUE(torch::equal(sd[5].second, torch::full({3}, 2.0f)));
  EXPECT_EQ(sd[6].second.scalar_type(), torch::kInt64);
  EXPECT_EQ(sd[6].second.dim(), 0);
  EXPECT_EQ(sd[6].second.item<int64_t>(), 7);
}

TEST(Pth, WriterRoundTrip) {
  TempDir dir;
  ganlite::io::NamedTensors tensors{{"z.weight", torch::randn({4, 3, 3, 3})},
                                    {"a.bias", torch::arange(4, torch::kFloat64)},
                                    {"steps", torch::tensor(12, torch::kInt64)},
                                    {"view", torch::arange(12, torch::kFloat32).reshape({3, 4}).t()}};
  ganlite::io::save_pth_state_dict(dir / "w.pth", tensors);
  const auto back = ganlite::io::load_pth_state_dict(dir / "w.pth");
  ASSERT_EQ(back.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(back[i].first, tensors[i].first);
    EXPECT_TRUE(torch::equal(back[i].second, tensors[i].second)) << tensors[i].first;
  }
}

TEST(Pth, RejectsDuplicateNamesOnWrite) {
  TempDir dir;
  EXPECT_THROW(ganlite::io::save_pth_state_dict(dir / "d.pth", {{"a", torch::ones(1)}, {"a", torch::ones(1)}}), Error);
}

TEST(Pth, LegacyFileExplainsHowToResave) {
  TempDir dir;
  // The start of a legacy torch.save file: pickle protocol 2 and the legacy magic number.
  ganlite::testing::write_text_file(dir / "legacy.pth", std::string("\x80\x02", 2) + "rest of an old pickle");
  try {
    ganlite::io::load_pth_state_dict(dir / "legacy.pth");
    FAIL();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("legacy.pth"), std::string::npos) << msg;
    EXPECT_NE(msg.find("_use_new_zipfile_serialization=True"), std::string::npos) << msg;
  }
}

TEST(Pth, MissingAndMalformedFilesThrow) {
  TempDir dir;
  try {
    ganlite::io::load_pth_state_dict(dir / "missing.pth");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pth"), std::string::npos) << e.what();
  }
  ganlite::testing::write_text_file(dir / "text.pth", "hello");
  EXPECT_THROW(ganlite::io::load_pth_state_dict(dir / "text.pth"), Error);
  ganlite::io::ZipWriter no_pickle;
  no_pickle.add("archive/version", "3\n");
  ganlite::testing::write_text_file(dir / "nopkl.pth", no_pickle.finish());
  EXPECT_THROW(ganlite::io::load_pth_state_dict(dir / "nopkl.pth"), Error);

  // Every truncation of the pickle and every corrupted pickle byte: Error or a valid result.
  const ganlite::io::ZipReader fixture(kPthFixtures / "torch113_state_dict.pth");
  std::string prefix;
  for (const auto& e : fixture.entries()) {
    if (e.name.size() > 8 && e.name.compare(e.name.size() - 8, 8, "data.pkl") == 0) prefix = e.name.substr(0, e.name.size() - 8);
  }
  ASSERT_FALSE(prefix.empty());
  const std::string pickle = fixture.read(prefix + "data.pkl");
  auto rebuild = [&](const std::string& new_pickle) {
    ganlite::io::ZipWriter w;
    for (const auto& e : fixture.entries()) w.add(e.name, e.name == prefix + "data.pkl" ? new_pickle : fixture.read(e));
    return w.finish();
  };
  for (size_t n = 0; n < pickle.size(); n += 3) {
    EXPECT_THROW(ganlite::io::parse_pth_state_dict(rebuild(pickle.substr(0, n)), "cut.pth"), Error) << n;
  }
  for (size_t at = 0; at < pickle.size(); ++at) {
    std::string bad = pickle;
    bad[at] = static_cast<char>(bad[at] ^ 0x21);
    try {
      ganlite::io::parse_pth_state_dict(rebuild(bad), "flip.pth");
    } catch (const Error&) {
    }
  }
}

TEST(Pth, PythonInteropBothWays) {
  if (!ganlite::testing::python_has_module("torch")) GTEST_SKIP() << "/usr/bin/python3 has no torch (python3-torch)";
  TempDir dir;
  ganlite::io::save_pth_state_dict(dir / "ours.pth", {{"conv.weight", torch::arange(6, torch::kFloat32).reshape({2, 3})},
                                                      {"bn.num_batches_tracked", torch::tensor(5, torch::kInt64)}});
  run_python(dir,
             "import torch, sys, collections\n"
             "d = sys.argv[1]\n"
             "sd = torch.load(d + '/ours.pth')\n"
             "assert list(sd.keys()) == ['conv.weight', 'bn.num_batches_tracked'], list(sd.keys())\n"
             "assert torch.equal(sd['conv.weight'], torch.arange(6.).reshape(2, 3))\n"
             "assert sd['bn.num_batches_tracked'].item() == 5\n"
             "torch.manual_seed(3)\n"
             "m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 2))\n"
             "torch.save(m.state_dict(), d + '/module.pth')\n"
             "torch.save({'G': m.state_dict(), 'epoch': 9, 'opt': {'lr': 0.1}}, d + '/nested.pth')\n"
             "shared = torch.arange(10.)\n"
             "torch.save({'a': shared[2:5], 'b': shared.view(2, 5)[:, 1]}, d + '/views.pth')\n"
             "torch.save(m.state_dict(), d + '/legacy.pth', _use_new_zipfile_serialization=False)\n"
             "for k, v in m.state_dict().items(): print(k, v.flatten()[0].item())\n");
  const auto sd = ganlite::io::load_pth_state_dict(dir / "module.pth");
  const std::vector<std::string> expected{"0.weight",       "0.bias",        "1.weight",
                                          "1.bias",         "1.running_mean", "1.running_var",
                                          "1.num_batches_tracked", "2.weight", "2.bias"};
  EXPECT_EQ(names_of(sd), expected);
  EXPECT_EQ(sd[0].second.sizes(), (std::vector<int64_t>{4, 3, 3, 3}));

  const auto nested = ganlite::io::load_pth_state_dict(dir / "nested.pth");
  ASSERT_EQ(nested.size(), 9u);  // epoch and lr are not tensors
  EXPECT_EQ(nested[0].first, "G.0.weight");
  EXPECT_TRUE(torch::equal(nested[0].second, sd[0].second));

  const auto views = ganlite::io::load_pth_state_dict(dir / "views.pth");
  ASSERT_EQ(views.size(), 2u);
  EXPECT_TRUE(torch::equal(views[0].second, torch::tensor({2.f, 3.f, 4.f})));
  EXPECT_TRUE(torch::equal(views[1].second, torch::tensor({1.f, 6.f})));

  try {
    ganlite::io::load_pth_state_dict(dir / "legacy.pth");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("_use_new_zipfile_serialization=True"), std::string::npos) << e.what();
  }
}
