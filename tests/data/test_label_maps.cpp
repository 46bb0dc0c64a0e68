// Label maps for semantic image synthesis (data/label_maps.h): one-hot + instance edges by hand,
// nearest resizing, the cityscapes and label-folder layouts on tiny files, bad files refused,
// and the labels2scenes synthetic data in the folder layout.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <set>

#include "ganlite/data/image_io.h"
#include "ganlite/data/label_maps.h"
#include "ganlite/data/synthetic.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
namespace data = ganlite::data;
using ganlite::testing::TempDir;

torch::Tensor ids(std::vector<int64_t> values, int64_t h, int64_t w) {
  return torch::tensor(values, torch::kInt64).reshape({1, h, w});
}

void write_ids(const fs::path& path, const cv::Mat& m) {
  fs::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), m));
}

cv::Mat rgb(int h, int w, uchar v) { return cv::Mat(h, w, CV_8UC3, cv::Scalar(v, v, v)); }

TEST(LabelMaps, OneHotAndEdgesByHand) {
  // 2x3 map: classes 0 1 1 / 2 2 255; instances split the 1s.
  const auto labels = ids({0, 1, 1, 2, 2, 255}, 2, 3);
  const auto oh = data::one_hot_labels(labels, 3);
  ASSERT_EQ(oh.sizes(), (std::vector<int64_t>{1, 3, 2, 3}));
  EXPECT_TRUE(torch::equal(oh[0][0], torch::tensor({1.f, 0.f, 0.f, 0.f, 0.f, 0.f}).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(oh[0][1], torch::tensor({0.f, 1.f, 1.f, 0.f, 0.f, 0.f}).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(oh[0][2], torch::tensor({0.f, 0.f, 0.f, 1.f, 1.f, 0.f}).reshape({2, 3})));
  EXPECT_EQ(oh[0].select(2, 2).select(1, 1).sum().item<float>(), 0.f);  // pixel (1, 2) is 255: all zero

  // Instances 5 5 6 on the top row, 7 7 7 below: every pixel differs from the one above or below.
  const auto inst = ids({5, 5, 6, 7, 7, 7}, 2, 3);
  const auto e = data::instance_edges(inst);
  EXPECT_TRUE(torch::equal(e[0][0], torch::ones({2, 3})));
  // A single object inside a field: its border pixels and the field's pixels touching it.
  const auto box = ids({0, 0, 0, 0, 3, 0, 0, 0, 0}, 3, 3);
  const auto eb = data::instance_edges(box)[0][0];
  EXPECT_TRUE(torch::equal(eb, torch::tensor({0.f, 1.f, 0.f, 1.f, 1.f, 1.f, 0.f, 1.f, 0.f}).reshape({3, 3}))) << eb;

  const auto input = data::semantic_input(labels, inst, 3);
  ASSERT_EQ(input.size(1), 4);
  EXPECT_TRUE(torch::equal(input.narrow(1, 0, 3), oh));
  EXPECT_TRUE(torch::equal(input.narrow(1, 3, 1), e));
  // Without instances the class map's own edges are used.
  EXPECT_TRUE(torch::equal(data::semantic_input(labels, {}, 3).narrow(1, 3, 1), data::instance_edges(labels)));

  try {
    data::one_hot_labels(ids({0, 4}, 1, 2), 3, "m.png");
    FAIL() << "id 4 with label_nc 3 accepted";
  } catch (const ganlite::Error& err) {
    EXPECT_NE(std::string(err.what()).find("m.png"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("4"), std::string::npos) << err.what();
  }
}

TEST(LabelMaps, NearestResizeKeepsLabels) {
  cv::Mat m(2, 2, CV_32S);
  m.at<int>(0, 0) = 1, m.at<int>(0, 1) = 2, m.at<int>(1, 0) = 3, m.at<int>(1, 1) = 40000;
  const cv::Mat up = data::resize_ids_nearest(m, {4, 4});
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) EXPECT_EQ(up.at<int>(y, x), m.at<int>(y / 2, x / 2)) << y << "," << x;
  }
  // Down by 3 picks the centre pixel of each 3x3 cell (PIL NEAREST), never a blend.
  cv::Mat big(6, 6, CV_32S);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 6; ++x) big.at<int>(y, x) = y * 10 + x;
  }
  const cv::Mat down = data::resize_ids_nearest(big, {2, 2});
  EXPECT_EQ(down.at<int>(0, 0), 11);
  EXPECT_EQ(down.at<int>(0, 1), 14);
  EXPECT_EQ(down.at<int>(1, 0), 41);
  EXPECT_EQ(down.at<int>(1, 1), 44);
}

TEST(LabelMaps, FolderLayoutReadsSamplesAndResizes) {
  TempDir dir;
  cv::Mat labels(8, 16, CV_8UC1, cv::Scalar(1));
  labels(cv::Rect(0, 0, 8, 8)).setTo(0);
  cv::Mat inst(8, 16, CV_16UC1, cv::Scalar(1));
  inst(cv::Rect(12, 0, 4, 8)).setTo(1001);  // a second object of class 1
  for (const std::string name : {"a", "b"}) {
    write_ids(dir / "train_labels" / (name + ".png"), labels);
    write_ids(dir / "train_inst" / (name + ".png"), inst);
    fs::create_directories(dir / "train_img");
    data::write_image_rgb(dir / "train_img" / (name + ".png"), rgb(8, 16, 200));
  }
  data::LabelMapOptions o;
  o.label_nc = 2;
  o.preprocess = "fixed";
  o.crop_size = 8;
  o.aspect_ratio = 2.0;  // 8 wide, 4 high
  o.flip = false;
  const auto set = data::open_label_maps(dir.path(), "train", o);
  ASSERT_EQ(set->size(), 2u);
  const auto s = set->get(1, 0);
  ASSERT_EQ(s.a.sizes(), (std::vector<int64_t>{3, 4, 8}));
  ASSERT_EQ(s.b.sizes(), (std::vector<int64_t>{3, 4, 8}));
  // Left half class 0, right half class 1. Edges come from the instance map alone (SPADE): both
  // classes carry instance 1, so only the object (source columns 12..15, resized columns 6, 7:
  // column x reads source column 2x + 1) has edges, on both sides of its border.
  EXPECT_EQ(s.a[0].narrow(1, 0, 4).min().item<float>(), 1.f);
  EXPECT_EQ(s.a[1].narrow(1, 4, 4).min().item<float>(), 1.f);
  const auto edge_row = s.a[2][0];
  EXPECT_TRUE(torch::equal(edge_row, torch::tensor({0.f, 0.f, 0.f, 0.f, 0.f, 1.f, 1.f, 0.f})));
  EXPECT_NEAR(s.b.mean().item<double>(), 200 / 127.5 - 1, 1e-6);

  // none keeps the stored size; the same (index, seed) gives the same flip.
  o.preprocess = "none";
  o.flip = true;
  const auto flipping = data::open_label_maps(dir.path(), "train", o);
  EXPECT_TRUE(torch::equal(flipping->get(0, 7).a, flipping->get(0, 7).a));
  EXPECT_EQ(flipping->get(0, 7).a.sizes(), (std::vector<int64_t>{3, 8, 16}));

  // An image missing for a label map is named.
  fs::remove(dir / "train_img" / "b.png");
  try {
    data::open_label_maps(dir.path(), "train", o);
    FAIL();
  } catch (const ganlite::Error& e) {
    EXPECT_NE(std::string(e.what()).find("b"), std::string::npos) << e.what();
  }
}

TEST(LabelMaps, CityscapesLayoutPairsByName) {
  TempDir dir;
  const std::string stem = "aachen_000000_000019";
  cv::Mat labels(4, 8, CV_8UC1, cv::Scalar(7));  // road
  cv::Mat inst(4, 8, CV_16UC1, cv::Scalar(7));
  inst(cv::Rect(0, 0, 2, 2)).setTo(26001);  // a car instance, as cityscapes writes them
  write_ids(dir / "gtFine" / "val" / "aachen" / (stem + "_gtFine_labelIds.png"), labels);
  write_ids(dir / "gtFine" / "val" / "aachen" / (stem + "_gtFine_instanceIds.png"), inst);
  write_ids(dir / "gtFine" / "val" / "aachen" / (stem + "_gtFine_color.png"), rgb(4, 8, 1));
  fs::create_directories(dir / "leftImg8bit" / "val" / "aachen");
  data::write_image_rgb(dir / "leftImg8bit" / "val" / "aachen" / (stem + "_leftImg8bit.png"), rgb(4, 8, 90));
  ASSERT_TRUE(data::is_cityscapes_layout(dir.path()));
  data::LabelMapOptions o;  // label_nc 35 as SPADE
  o.preprocess = "none";
  o.flip = false;
  const auto set = data::open_label_maps(dir.path(), "test", o);  // test reads val/
  ASSERT_EQ(set->size(), 1u);
  const auto s = set->get(0, 0);
  ASSERT_EQ(s.a.size(0), 36);
  EXPECT_EQ(s.a[7].sum().item<float>(), 32.f);
  // The 16-bit instance id is read as it is: its 2x2 block has edges on its border.
  EXPECT_EQ(s.a[35][0][1].item<float>(), 1.f);
  EXPECT_EQ(s.a[35][0][2].item<float>(), 1.f);
  EXPECT_EQ(s.a[35][3][7].item<float>(), 0.f);
  EXPECT_NE(s.b_path.find("leftImg8bit"), std::string::npos);
  EXPECT_THROW(data::open_label_maps(dir.path(), "train", o), ganlite::Error);  // no train/
}

TEST(LabelMaps, TruncatedAndOversizedFilesAreRefused) {
  TempDir dir;
  cv::Mat labels(4, 4, CV_8UC1, cv::Scalar(0));
  write_ids(dir / "ok.png", labels);
  const std::string bytes = ganlite::testing::read_text_file(dir / "ok.png");
  ganlite::testing::write_text_file(dir / "cut.png", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(data::read_image_ids(dir / "cut.png"), ganlite::Error);
  EXPECT_THROW(data::read_semantic_input(dir / "cut.png", "", 2), ganlite::Error);
  // A PNG header declaring 60000 x 60000 pixels is refused before decoding.
  std::string huge = bytes;
  const auto put_be32 = [&](size_t pos, uint32_t v) {
    for (int i = 0; i < 4; ++i) huge[pos + i] = static_cast<char>((v >> (24 - 8 * i)) & 255);
  };
  put_be32(16, 60000);
  put_be32(20, 60000);
  ganlite::testing::write_text_file(dir / "huge.png", huge);
  try {
    data::read_image_ids(dir / "huge.png");
    FAIL();
  } catch (const ganlite::Error& e) {
    EXPECT_NE(std::string(e.what()).find("limit"), std::string::npos) << e.what();
  }
  // An RGB file is not a map of ids.
  data::write_image_rgb(dir / "rgb.png", rgb(4, 4, 3));
  EXPECT_THROW(data::read_image_ids(dir / "rgb.png"), ganlite::Error);
  const auto input = data::read_semantic_input(dir / "ok.png", "", 2, {8, 6});
  EXPECT_EQ(input.sizes(), (std::vector<int64_t>{1, 3, 6, 8}));
}

TEST(LabelMaps, Labels2ScenesWritesTheFolderLayout) {
  TempDir dir;
  data::SyntheticOptions o;
  o.kind = "labels2scenes";
  o.count = 3;
  o.test_count = 1;
  o.size = 32;
  o.seed = 5;
  o.threads = 1;
  data::make_synthetic_dataset(dir / "a", o);
  o.threads = 2;
  data::make_synthetic_dataset(dir / "b", o);
  for (const std::string sub : {"train_labels", "train_inst", "train_img", "test_inst"}) {
    for (const auto& p : data::list_images(dir / "a" / sub)) {
      EXPECT_EQ(ganlite::testing::read_text_file(p),
                ganlite::testing::read_text_file(dir / "b" / sub / p.filename()))
          << p;
    }
  }
  const cv::Mat inst = data::read_image_ids(dir / "a" / "train_inst" / "000000.png");
  const cv::Mat labels = data::read_image_ids(dir / "a" / "train_labels" / "000000.png");
  std::set<int> objects;
  for (int y = 0; y < inst.rows; ++y) {
    for (int x = 0; x < inst.cols; ++x) {
      const int id = inst.at<int>(y, x);
      EXPECT_EQ(id < 1000 ? id : id / 1000, labels.at<int>(y, x));  // cityscapes' class * 1000 + k
      if (id >= 1000) objects.insert(id);
    }
  }
  EXPECT_GE(objects.size(), 2u);
  data::LabelMapOptions lo;
  lo.label_nc = static_cast<int>(data::scene_class_names().size());
  lo.preprocess = "none";
  const auto set = data::open_label_maps(dir / "a", "train", lo);
  EXPECT_EQ(set->size(), 3u);
  EXPECT_EQ(set->get(2, 0).a.size(0), lo.label_nc + 1);
}

}  // namespace
