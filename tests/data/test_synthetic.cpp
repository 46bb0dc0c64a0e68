#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "ganlite/data/dataset.h"
#include "ganlite/data/image_io.h"
#include "ganlite/data/synthetic.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
namespace data = ganlite::data;
using ganlite::testing::read_text_file;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

data::SyntheticOptions synth(const std::string& kind, int count, int test_count, uint64_t seed, int threads = 2) {
  data::SyntheticOptions o;
  o.kind = kind;
  o.count = count;
  o.test_count = test_count;
  o.size = 32;
  o.seed = seed;
  o.threads = threads;
  return o;
}

// Relative path -> bytes of every file under `root`.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_text_file(e.path());
  }
  return files;
}

size_t count_files(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

double psnr(const cv::Mat& a, const cv::Mat& b) { return cv::PSNR(a, b); }

TEST(Synthetic, Edges2ShapesLayout) {
  TempDir dir;
  const auto summary = data::make_synthetic_dataset(dir / "e2s", synth("edges2shapes", 6, -1, 1));
  EXPECT_EQ(summary.train_count, 6);
  EXPECT_EQ(summary.test_count, 1);  // 6 / 4 rounded down
  EXPECT_EQ(summary.files_written, 7);
  EXPECT_EQ(count_files(dir / "e2s" / "train"), 6u);
  EXPECT_EQ(count_files(dir / "e2s" / "test"), 1u);
  const cv::Mat ab = data::read_image_rgb(dir / "e2s" / "train" / "000000.png");
  EXPECT_EQ(ab.cols, 64);
  EXPECT_EQ(ab.rows, 32);
  const auto meta = nlohmann::json::parse(read_text_file(dir / "e2s" / "dataset.json"));
  EXPECT_EQ(meta.at("kind"), "edges2shapes");
  EXPECT_EQ(meta.at("train_count"), 6);
  EXPECT_EQ(meta.at("seed"), 1);
  // Loads as a pix2pix dataset.
  data::DatasetOptions o;
  o.transform.preprocess = "none";
  auto ds = data::open_aligned(dir / "e2s", "train", o);
  EXPECT_EQ(ds->size(), 6u);
  EXPECT_EQ(ds->get(0, 0).b.sizes(), (std::vector<int64_t>{3, 32, 32}));
  // No staging folders left beside the output.
  EXPECT_EQ(count_files(dir.path()), 1u);
}

TEST(Synthetic, Edges2ShapesIsLearnableNotIdentity) {
  double identity_psnr = 0;
  for (int i = 0; i < 8; ++i) {
    const auto ex = data::render_synthetic("edges2shapes", 64, 3, "train", i);
    identity_psnr += psnr(ex.a, ex.b) / 8;
    // Edges are dark on white; the photo has a plain background and coloured shapes.
    EXPECT_EQ(ex.a.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 255, 255));
    cv::Mat dark;
    cv::inRange(ex.a, cv::Scalar(0, 0, 0), cv::Scalar(60, 60, 60), dark);
    EXPECT_GT(cv::countNonZero(dark), 10);
  }
  EXPECT_LT(identity_psnr, 16.0);  // "output = input" scores badly against B
  // Every shape pixel is one kind's base colour times a shading factor in [0.55, 1] (the table
  // documented in synthetic.cpp), so the colour is learnable from the shape alone.
  const std::vector<cv::Vec3d> bases{{215, 40, 40}, {40, 70, 215}, {40, 165, 60}, {240, 150, 20}, {150, 50, 200}};
  std::set<size_t> kinds_seen;
  for (int i = 0; i < 30; ++i) {
    const auto ex = data::render_synthetic("edges2shapes", 32, 11, "train", i);
    for (int y = 0; y < 32; ++y) {
      for (int x = 0; x < 32; ++x) {
        const auto c = ex.b.at<cv::Vec3b>(y, x);
        if (c == cv::Vec3b(235, 235, 225)) continue;  // background
        bool matched = false;
        for (size_t k = 0; k < bases.size() && !matched; ++k) {
          // The factor from the largest channel, where rounding matters least.
          int m = 0;
          for (int ch = 1; ch < 3; ++ch) m = bases[k][ch] > bases[k][m] ? ch : m;
          const double f = c[m] / bases[k][m];
          matched = f >= 0.54 && f <= 1.01;
          for (int ch = 0; ch < 3; ++ch) matched = matched && std::abs(c[ch] - f * bases[k][ch]) <= 1.5;
          if (matched) kinds_seen.insert(k);
        }
        ASSERT_TRUE(matched) << "image " << i << " pixel " << x << "," << y;
      }
    }
  }
  EXPECT_EQ(kinds_seen.size(), bases.size());
}

TEST(Synthetic, Shapes2StripesLayoutAndTruth) {
  TempDir dir;
  const auto summary = data::make_synthetic_dataset(dir / "s2s", synth("shapes2stripes", 5, 3, 2));
  EXPECT_EQ(summary.files_written, 5 + 5 + 3 + 3 + 3);
  for (const char* sub : {"trainA", "trainB"}) EXPECT_EQ(count_files(dir / "s2s" / sub), 5u) << sub;
  for (const char* sub : {"testA", "testB", "testA_truth"}) EXPECT_EQ(count_files(dir / "s2s" / sub), 3u) << sub;
  auto names = [&](const char* sub) {
    std::vector<std::string> n;
    for (const auto& p : data::list_images(dir / "s2s" / sub)) n.push_back(p.filename().string());
    return n;
  };
  EXPECT_EQ(names("testA"), names("testA_truth"));
  for (const auto& name : names("testA")) {
    const cv::Mat a = data::read_image_rgb(dir / "s2s" / "testA" / name);
    const cv::Mat truth = data::read_image_rgb(dir / "s2s" / "testA_truth" / name);
    cv::Mat diff;
    cv::absdiff(a, truth, diff);
    cv::Mat changed;
    cv::transform(diff, changed, cv::Matx13f(1, 1, 1));
    const int n_changed = cv::countNonZero(changed);
    EXPECT_GT(n_changed, 20) << name;                 // stripes appear on the objects
    EXPECT_LT(n_changed, a.rows * a.cols * 0.8) << name;  // the background is unchanged
  }
  data::DatasetOptions o;
  o.transform.preprocess = "none";
  EXPECT_EQ(data::open_unaligned(dir / "s2s", "test", o)->size(), 3u);
}

TEST(Synthetic, Labels2ScenesLabelsMatchPalette) {
  TempDir dir;
  data::make_synthetic_dataset(dir / "l2s", synth("labels2scenes", 3, 2, 4));
  EXPECT_EQ(count_files(dir / "l2s" / "train_labels"), 3u);
  EXPECT_EQ(count_files(dir / "l2s" / "test_labels"), 2u);
  const cv::Mat labels = data::read_image_gray(dir / "l2s" / "test_labels" / "000001.png");
  const cv::Mat ab = data::read_image_rgb(dir / "l2s" / "test" / "000001.png");
  ASSERT_EQ(labels.size(), cv::Size(32, 32));
  const auto& palette = data::scene_class_palette();
  std::set<int> classes;
  for (int y = 0; y < 32; ++y) {
    for (int x = 0; x < 32; ++x) {
      const int c = labels.at<uchar>(y, x);
      ASSERT_LT(c, static_cast<int>(palette.size()));
      ASSERT_EQ(ab.at<cv::Vec3b>(y, x), palette[static_cast<size_t>(c)]);
      classes.insert(c);
    }
  }
  EXPECT_GE(classes.size(), 3u);
  const auto meta = nlohmann::json::parse(read_text_file(dir / "l2s" / "dataset.json"));
  EXPECT_EQ(meta.at("classes").size(), data::scene_class_names().size());
}

TEST(Synthetic, DeterministicAcrossRunsAndThreads) {
  TempDir dir;
  for (const auto& kind : data::synthetic_kinds()) {
    data::make_synthetic_dataset(dir / (kind + "_1"), synth(kind, 6, 2, 9, 1));
    data::make_synthetic_dataset(dir / (kind + "_2"), synth(kind, 6, 2, 9, 3));
    data::make_synthetic_dataset(dir / (kind + "_3"), synth(kind, 6, 2, 10, 2));
    const auto one = snapshot(dir / (kind + "_1"));
    EXPECT_EQ(one, snapshot(dir / (kind + "_2"))) << kind;
    const auto other = snapshot(dir / (kind + "_3"));
    ASSERT_EQ(one.size(), other.size());
    int same = 0;
    for (const auto& [name, bytes] : one) same += name != "dataset.json" && other.at(name) == bytes;
    EXPECT_EQ(same, 0) << kind << ": a different seed should change every image";
  }
}

TEST(Synthetic, RefusesNonEmptyOutputUnlessForced) {
  TempDir dir;
  fs::create_directories(dir / "out");
  ganlite::testing::write_text_file(dir / "out" / "keep.txt", "mine");
  EXPECT_THROW(data::make_synthetic_dataset(dir / "out", synth("edges2shapes", 2, 1, 0)), ganlite::UsageError);
  EXPECT_TRUE(fs::exists(dir / "out" / "keep.txt"));
  auto o = synth("edges2shapes", 2, 1, 0);
  o.force = true;
  data::make_synthetic_dataset(dir / "out", o);
  EXPECT_FALSE(fs::exists(dir / "out" / "keep.txt"));
  EXPECT_EQ(count_files(dir / "out" / "train"), 2u);
  EXPECT_EQ(count_files(dir.path()), 1u);
  // An existing empty folder is simply filled.
  fs::create_directories(dir / "empty");
  EXPECT_NO_THROW(data::make_synthetic_dataset(dir / "empty", synth("edges2shapes", 1, 1, 0)));
  EXPECT_THROW(data::make_synthetic_dataset(dir / "x", synth("edges2circles", 1, 1, 0)), ganlite::UsageError);
  EXPECT_THROW(data::make_synthetic_dataset(dir / "x", synth("edges2shapes", 0, 1, 0)), ganlite::UsageError);
  EXPECT_FALSE(fs::exists(dir / "x"));
}

TEST(Synthetic, CommandLine) {
  TempDir dir;
  const auto out = (dir / "cli").string();
  auto r = run_cli("make-dataset --kind labels2scenes --count 4 --size 24 --seed 3 --out '" + out + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("train_count"), 4);
  EXPECT_EQ(j.at("test_count"), 1);
  EXPECT_EQ(j.at("files"), 20);  // per image: A|B, class ids, instance ids, the image
  EXPECT_EQ(count_files(dir / "cli" / "train"), 4u);
  EXPECT_EQ(data::read_image_rgb(dir / "cli" / "test" / "000000.png").size(), cv::Size(48, 24));

  r = run_cli("make-dataset --kind labels2scenes --count 4 --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--force"), std::string::npos) << r.output;
  r = run_cli("make-dataset --kind nope --count 4 --out '" + out + "'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("shapes2stripes"), std::string::npos) << r.output;
  r = run_cli("make-dataset --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--test-count"), std::string::npos);
}

}  // namespace
