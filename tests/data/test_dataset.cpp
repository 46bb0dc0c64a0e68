#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "ganlite/data/dataset.h"
#include "ganlite/data/image_io.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
namespace data = ganlite::data;
using ganlite::testing::TempDir;
using ganlite::testing::write_text_file;

// Every pixel distinct: R = 8x, G = 8y, B = `blue`. A and B halves differ only in blue, so after
// identical geometry their red and green planes must match exactly.
cv::Mat pattern(int w, int h, uchar blue) {
  cv::Mat rgb(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 8 % 256), uchar(y * 8 % 256), blue);
  }
  return rgb;
}

void write_ab(const fs::path& path, int w, int h) {
  cv::Mat ab;
  cv::hconcat(pattern(w, h, 10), pattern(w, h, 200), ab);
  data::write_image_rgb(path, ab);
}

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const ganlite::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ganlite::Error";
  return "";
}

data::DatasetOptions opts(const std::string& preprocess, int load, int crop, bool flip) {
  data::DatasetOptions o;
  o.transform.preprocess = preprocess;
  o.transform.load_size = load;
  o.transform.crop_size = crop;
  o.transform.flip = flip;
  return o;
}

const data::DatasetOptions kDefaults;

bool same_tensor(const torch::Tensor& a, const torch::Tensor& b) { return a.sizes() == b.sizes() && torch::equal(a, b); }

TEST(Dataset, MissingFolderNamesFolderAndLayout) {
  TempDir dir;
  const std::string msg = error_of([&] { data::open_aligned(dir / "maps", "train", kDefaults); });
  EXPECT_NE(msg.find((dir / "maps" / "train").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("A|B"), std::string::npos) << msg;
  fs::create_directories(dir / "h2z" / "trainA");
  const std::string msg2 = error_of([&] { data::open_unaligned(dir / "h2z", "train", kDefaults); });
  EXPECT_NE(msg2.find("trainB"), std::string::npos) << msg2;
  const std::string msg3 = error_of([&] { data::open_single(dir / "nothing_here", kDefaults); });
  EXPECT_NE(msg3.find("nothing_here"), std::string::npos) << msg3;
}

TEST(Dataset, EmptyFolderNamesIt) {
  TempDir dir;
  fs::create_directories(dir / "d" / "train");
  write_text_file(dir / "d" / "train" / "readme.txt", "not an image");
  const std::string msg = error_of([&] { data::open_aligned(dir / "d", "train", kDefaults); });
  EXPECT_NE(msg.find((dir / "d" / "train").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("no readable images"), std::string::npos) << msg;
}

TEST(Dataset, OddWidthAlignedImageNamesFile) {
  TempDir dir;
  fs::create_directories(dir / "train");
  data::write_image_rgb(dir / "train" / "odd.png", pattern(21, 10, 0));
  auto ds = data::open_aligned(dir.path(), "train", opts("none", 0 + 8, 8, false));
  const std::string msg = error_of([&] { ds->get(0, 0); });
  EXPECT_NE(msg.find("odd.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("odd width"), std::string::npos) << msg;
}

TEST(Dataset, SkipBadFilesCountsThem) {
  TempDir dir;
  const fs::path train = dir / "train";
  fs::create_directories(train);
  for (const char* name : {"a.png", "c.png", "e.jpg"}) write_ab(train / name, 8, 8);
  write_text_file(train / "b_empty.png", "");
  write_text_file(train / "d_text.png", "hello");
  data::write_image_rgb(train / "f_odd.png", pattern(15, 8, 0));
  fs::create_directories(train / "g_folder.png");

  auto strict = data::open_aligned(dir.path(), "train", opts("none", 8, 8, false));
  EXPECT_EQ(strict->size(), 7u);
  const std::string msg = error_of([&] { strict->get(1, 0); });
  EXPECT_NE(msg.find("b_empty.png"), std::string::npos) << msg;

  auto o = opts("none", 8, 8, false);
  o.skip_bad_files = true;
  auto lenient = data::open_aligned(dir.path(), "train", o);
  EXPECT_EQ(lenient->size(), 3u);
  EXPECT_EQ(lenient->skipped_files(), 4u);
  for (size_t i = 0; i < lenient->size(); ++i) EXPECT_NO_THROW(lenient->get(i, 0));

  // A folder with nothing readable is still an error, and it says why.
  const fs::path bad = dir / "bad" / "train";
  fs::create_directories(bad);
  write_text_file(bad / "x.png", "");
  const std::string msg2 = error_of([&] { data::open_aligned(dir / "bad", "train", o); });
  EXPECT_NE(msg2.find("1 skipped"), std::string::npos) << msg2;
}

TEST(Dataset, TransformOutputSizes) {
  TempDir dir;
  fs::create_directories(dir / "train");
  write_ab(dir / "train" / "wide.png", 20, 10);  // each half 20x10
  struct Case {
    std::string preprocess;
    int load, crop;
    std::vector<int64_t> size;
  };
  for (const Case& c : {Case{"resize_and_crop", 24, 16, {3, 16, 16}}, Case{"scale_width", 24, 8, {3, 8, 8}},
                        Case{"crop", 0 + 12, 6, {3, 6, 6}}, Case{"none", 24, 8, {3, 8, 20}}}) {
    auto ds = data::open_aligned(dir.path(), "train", opts(c.preprocess, c.load, c.crop, true));
    const auto s = ds->get(0, 3);
    EXPECT_EQ(s.a.sizes(), c.size) << c.preprocess;
    EXPECT_EQ(s.b.sizes(), c.size) << c.preprocess;
    EXPECT_GE(s.a.min().item<float>(), -1.0f);
    EXPECT_LE(s.a.max().item<float>(), 1.0f);
  }
  // "none" rounds each side to a multiple of 4 as Python's round does (18/4 = 4.5 -> 4, 22/4 = 5.5 -> 6).
  fs::create_directories(dir / "odd" / "train");
  write_ab(dir / "odd" / "train" / "x.png", 22, 18);
  auto ds = data::open_aligned(dir / "odd", "train", opts("none", 8, 8, false));
  EXPECT_EQ(ds->get(0, 0).a.sizes(), (std::vector<int64_t>{3, 16, 24}));
}

TEST(Dataset, CropTooLargeAndBadOptions) {
  TempDir dir;
  fs::create_directories(dir / "train");
  write_ab(dir / "train" / "small.png", 8, 8);
  auto ds = data::open_aligned(dir.path(), "train", opts("crop", 8, 16, false));
  EXPECT_NE(error_of([&] { ds->get(0, 0); }).find("small.png"), std::string::npos);
  EXPECT_THROW(data::open_aligned(dir.path(), "train", opts("zoom", 8, 8, false)), ganlite::UsageError);
  const std::string msg = error_of([&] { data::open_aligned(dir.path(), "train", opts("zoom", 8, 8, false)); });
  EXPECT_NE(msg.find("scale_width"), std::string::npos) << msg;
  EXPECT_THROW(data::open_aligned(dir.path(), "train", opts("resize_and_crop", 8, 16, false)), ganlite::UsageError);
  auto o = opts("none", 8, 8, false);
  o.direction = "sideways";
  EXPECT_THROW(data::open_aligned(dir.path(), "train", o), ganlite::UsageError);
}

TEST(Dataset, AlignedHalvesShareCropAndFlip) {
  TempDir dir;
  fs::create_directories(dir / "train");
  write_ab(dir / "train" / "p.png", 24, 24);
  for (const std::string preprocess : {"crop", "resize_and_crop", "scale_width"}) {
    auto ds = data::open_aligned(dir.path(), "train", opts(preprocess, 30, 12, true));
    std::set<std::vector<float>> corners;
    for (uint64_t seed = 0; seed < 12; ++seed) {
      const auto s = ds->get(0, seed);
      ASSERT_TRUE(same_tensor(s.a.slice(0, 0, 2), s.b.slice(0, 0, 2))) << preprocess << " seed " << seed;
      EXPECT_FALSE(same_tensor(s.a[2], s.b[2]));  // the halves really are different images
      corners.insert({s.a[0][0][0].item<float>(), s.a[1][0][0].item<float>()});
    }
    EXPECT_GT(corners.size(), 2u) << preprocess << ": crops should vary with the seed";
  }
}

TEST(Dataset, DeterministicGivenIndexAndSeed) {
  TempDir dir;
  fs::create_directories(dir / "train");
  for (int i = 0; i < 4; ++i) write_ab(dir / "train" / (std::to_string(i) + ".png"), 24, 24);
  auto ds1 = data::open_aligned(dir.path(), "train", opts("resize_and_crop", 28, 16, true));
  auto ds2 = data::open_aligned(dir.path(), "train", opts("resize_and_crop", 28, 16, true));
  int differing = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(same_tensor(ds1->get(i, 7).a, ds2->get(i, 7).a));
    EXPECT_TRUE(same_tensor(ds1->get(i, 7).b, ds1->get(i, 7).b));
    if (!same_tensor(ds1->get(i, 7).a, ds1->get(i, 8).a)) ++differing;
  }
  EXPECT_GT(differing, 0);
}

TEST(Dataset, FlipMirrorsHorizontally) {
  TempDir dir;
  fs::create_directories(dir / "train");
  write_ab(dir / "train" / "p.png", 16, 8);
  auto plain = data::open_aligned(dir.path(), "train", opts("none", 8, 8, false));
  auto flipping = data::open_aligned(dir.path(), "train", opts("none", 8, 8, true));
  const auto reference = plain->get(0, 0).a;
  int flipped = 0, unflipped = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    EXPECT_TRUE(same_tensor(plain->get(0, seed).a, reference));
    const auto s = flipping->get(0, seed);
    if (same_tensor(s.a, reference)) {
      ++unflipped;
    } else {
      EXPECT_TRUE(same_tensor(s.a, reference.flip({2})));
      EXPECT_TRUE(same_tensor(s.b.slice(0, 0, 2), reference.flip({2}).slice(0, 0, 2)));
      ++flipped;
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_GT(unflipped, 5);
}

TEST(Dataset, DirectionBtoASwapsHalves) {
  TempDir dir;
  fs::create_directories(dir / "train");
  write_ab(dir / "train" / "p.png", 8, 8);
  auto o = opts("none", 8, 8, false);
  const auto ab = data::open_aligned(dir.path(), "train", o)->get(0, 0);
  o.direction = "BtoA";
  const auto ba = data::open_aligned(dir.path(), "train", o)->get(0, 0);
  EXPECT_TRUE(same_tensor(ab.a, ba.b));
  EXPECT_TRUE(same_tensor(ab.b, ba.a));
  EXPECT_NEAR(ab.a[2][0][0].item<float>(), 10 / 127.5 - 1, 1e-6);
}

TEST(Dataset, UnalignedPairing) {
  TempDir dir;
  fs::create_directories(dir / "trainA");
  fs::create_directories(dir / "trainB");
  for (int i = 0; i < 5; ++i) data::write_image_rgb(dir / "trainA" / ("a" + std::to_string(i) + ".png"), pattern(8, 8, 0));
  for (int i = 0; i < 3; ++i) data::write_image_rgb(dir / "trainB" / ("b" + std::to_string(i) + ".png"), pattern(8, 8, 0));
  auto o = opts("none", 8, 8, false);
  o.serial_batches = true;
  auto serial = data::open_unaligned(dir.path(), "train", o);
  ASSERT_EQ(serial->size(), 5u);
  EXPECT_EQ(fs::path(serial->get(4, 0).a_path).filename(), "a4.png");
  EXPECT_EQ(fs::path(serial->get(4, 0).b_path).filename(), "b1.png");
  o.serial_batches = false;
  auto random = data::open_unaligned(dir.path(), "train", o);
  std::set<std::string> partners;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto s = random->get(2, seed);
    EXPECT_EQ(fs::path(s.a_path).filename(), "a2.png");
    EXPECT_EQ(s.b_path, random->get(2, seed).b_path);  // deterministic
    partners.insert(s.b_path);
  }
  EXPECT_EQ(partners.size(), 3u);
  EXPECT_THROW(random->get(5, 0), ganlite::Error);
}

TEST(Dataset, SingleFolderHasNoB) {
  TempDir dir;
  data::write_image_rgb(dir / "x.png", pattern(12, 8, 0));
  data::write_image_rgb(dir / "y.jpg", pattern(12, 8, 0));
  auto ds = data::open_single(dir.path(), opts("none", 8, 8, false));
  ASSERT_EQ(ds->size(), 2u);
  const auto s = ds->get(1, 0);
  EXPECT_FALSE(s.b.defined());
  EXPECT_EQ(s.a.sizes(), (std::vector<int64_t>{3, 8, 12}));
  EXPECT_EQ(fs::path(s.a_path).filename(), "y.jpg");
}

}  // namespace
