#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ganlite/data/image_io.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using ganlite::testing::read_text_file;
using ganlite::testing::TempDir;
using ganlite::testing::write_text_file;
namespace data = ganlite::data;

// A small RGB test card with distinct values per channel and position.
cv::Mat test_card(int h = 12, int w = 16) {
  cv::Mat rgb(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 15), uchar(y * 20), uchar(200 - x - y));
  }
  return rgb;
}

bool same_pixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

// Expects `fn` to throw ganlite::Error whose message contains `needle`.
template <typename Fn>
void expect_error_naming(Fn fn, const std::string& needle) {
  try {
    fn();
    FAIL() << "expected ganlite::Error naming " << needle;
  } catch (const ganlite::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ImageIo, PngRoundTripKeepsRgbOrder) {
  TempDir dir;
  const cv::Mat rgb = test_card();
  data::write_image_rgb(dir / "card.png", rgb);
  const cv::Mat back = data::read_image_rgb(dir / "card.png");
  EXPECT_TRUE(same_pixels(rgb, back));
  // On disk OpenCV stores BGR: the red channel of our RGB must be the file's third channel.
  const cv::Mat raw = cv::imread((dir / "card.png").string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(raw.at<cv::Vec3b>(3, 5)[2], rgb.at<cv::Vec3b>(3, 5)[0]);
}

TEST(ImageIo, LosslessFormatsAndJpegRead) {
  TempDir dir;
  const cv::Mat rgb = test_card();
  for (const char* name : {"a.bmp", "a.webp", "A.PNG"}) {
    data::write_image_rgb(dir / name, rgb);
    EXPECT_TRUE(same_pixels(rgb, data::read_image_rgb(dir / name))) << name;
  }
  data::write_image_rgb(dir / "a.jpg", rgb);
  const cv::Mat jpg = data::read_image_rgb(dir / "a.jpg");
  ASSERT_EQ(jpg.size(), rgb.size());
  EXPECT_LT(cv::norm(jpg, rgb, cv::NORM_L1) / static_cast<double>(rgb.total() * 3), 8.0);
}

TEST(ImageIo, GrayBecomesRgb) {
  TempDir dir;
  cv::Mat gray(5, 7, CV_8UC1);
  for (int i = 0; i < 35; ++i) gray.data[i] = uchar(i * 7);
  cv::imwrite((dir / "g.png").string(), gray);
  const cv::Mat rgb = data::read_image_rgb(dir / "g.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(gray.at<uchar>(2, 3), gray.at<uchar>(2, 3), gray.at<uchar>(2, 3)));
  EXPECT_TRUE(same_pixels(gray, data::read_image_gray(dir / "g.png")));
}

TEST(ImageIo, RgbaDropsAlpha) {
  TempDir dir;
  cv::Mat bgra(4, 4, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent: colour must survive
  cv::imwrite((dir / "a.png").string(), bgra);
  const cv::Mat rgb = data::read_image_rgb(dir / "a.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 1), cv::Vec3b(30, 20, 10));
}

TEST(ImageIo, SixteenBitIsScaledBy257) {
  TempDir dir;
  cv::Mat bgr16(2, 3, CV_16UC3);
  bgr16.at<cv::Vec3w>(0, 0) = cv::Vec3w(0, 257 * 100, 65535);
  bgr16.at<cv::Vec3w>(1, 2) = cv::Vec3w(257 * 7, 1000, 257 * 200);
  cv::imwrite((dir / "deep.png").string(), bgr16);
  const cv::Mat rgb = data::read_image_rgb(dir / "deep.png");
  ASSERT_EQ(rgb.type(), CV_8UC3);
  EXPECT_EQ(rgb.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 100, 0));
  EXPECT_EQ(rgb.at<cv::Vec3b>(1, 2), cv::Vec3b(200, 4, 7));  // 1000/257 = 3.9 -> 4

  cv::Mat gray16(2, 2, CV_16UC1, cv::Scalar(257 * 9));
  cv::imwrite((dir / "g16.png").string(), gray16);
  EXPECT_EQ(data::read_image_rgb(dir / "g16.png").at<cv::Vec3b>(1, 1), cv::Vec3b(9, 9, 9));
}

TEST(ImageIo, MissingFileNamesIt) {
  TempDir dir;
  expect_error_naming([&] { data::read_image_rgb(dir / "nope.png"); }, "nope.png");
}

TEST(ImageIo, ZeroByteFileNamesIt) {
  TempDir dir;
  write_text_file(dir / "empty.png", "");
  expect_error_naming([&] { data::read_image_rgb(dir / "empty.png"); }, "empty.png");
}

TEST(ImageIo, FolderNamedLikeImage) {
  TempDir dir;
  fs::create_directories(dir / "x.png");
  expect_error_naming([&] { data::read_image_rgb(dir / "x.png"); }, "x.png");
}

TEST(ImageIo, TextFileNamedPng) {
  TempDir dir;
  write_text_file(dir / "notes.png", "this is not an image\n");
  expect_error_naming([&] { data::read_image_rgb(dir / "notes.png"); }, "notes.png");
}

TEST(ImageIo, CorruptPngBytes) {
  TempDir dir;
  data::write_image_rgb(dir / "ok.png", test_card(32, 32));
  std::string bytes = read_text_file(dir / "ok.png");
  // Garbage after a valid signature.
  write_text_file(dir / "garbage.png", bytes.substr(0, 8) + std::string(200, '\x5a'));
  expect_error_naming([&] { data::read_image_rgb(dir / "garbage.png"); }, "garbage.png");
  // Damaged compressed data with the chunk structure intact: libpng's CRC check must catch it.
  const size_t idat = bytes.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  for (size_t i = idat + 6; i < idat + 20; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  write_text_file(dir / "flipped.png", bytes);
  expect_error_naming([&] { data::read_image_rgb(dir / "flipped.png"); }, "flipped.png");
}

TEST(ImageIo, TruncatedPngAndJpeg) {
  TempDir dir;
  cv::Mat noise(48, 48, CV_8UC3);
  cv::randu(noise, 0, 255);
  data::write_image_rgb(dir / "full.png", noise);
  data::write_image_rgb(dir / "full.jpg", noise);
  for (const char* name : {"full.png", "full.jpg"}) {
    const std::string bytes = read_text_file(dir / name);
    const std::string cut = std::string("cut_") + name;
    write_text_file(dir / cut, bytes.substr(0, bytes.size() * 2 / 3));
    expect_error_naming([&] { data::read_image_rgb(dir / cut); }, cut);
    // Only the last two bytes (JPEG EOI / part of the PNG IEND chunk) missing.
    const std::string tail = std::string("tail_") + name;
    write_text_file(dir / tail, bytes.substr(0, bytes.size() - 2));
    expect_error_naming([&] { data::read_image_rgb(dir / tail); }, tail);
  }
}

TEST(ImageIo, WriteRejectsBadInput) {
  TempDir dir;
  expect_error_naming([&] { data::write_image_rgb(dir / "a.tiff", test_card()); }, "a.tiff");
  expect_error_naming([&] { data::write_image_rgb(dir / "b.png", cv::Mat(3, 3, CV_32FC3)); }, "b.png");
  EXPECT_FALSE(fs::exists(dir / "b.png"));
}

TEST(ImageIo, ListImagesSortedAndFiltered) {
  TempDir dir;
  for (const char* name : {"b.png", "a.JPG", "c.webp", "notes.txt", "d.bmp"}) write_text_file(dir / name, "x");
  fs::create_directories(dir / "sub");
  const auto images = data::list_images(dir.path());
  ASSERT_EQ(images.size(), 4u);
  EXPECT_EQ(images[0].filename(), "a.JPG");
  EXPECT_EQ(images[1].filename(), "b.png");
  EXPECT_EQ(images[2].filename(), "c.webp");
  EXPECT_EQ(images[3].filename(), "d.bmp");
  expect_error_naming([&] { data::list_images(dir / "missing_folder"); }, "missing_folder");
  expect_error_naming([&] { data::list_images(dir / "notes.txt"); }, "notes.txt");
}

TEST(ImageIo, TensorConversions) {
  const cv::Mat rgb = test_card(6, 9);
  const torch::Tensor t = data::image_to_tensor(rgb);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{3, 6, 9}));
  EXPECT_EQ(t.dtype(), torch::kFloat32);
  EXPECT_NEAR(t[0][2][4].item<float>(), rgb.at<cv::Vec3b>(2, 4)[0] / 127.5 - 1.0, 1e-6);
  EXPECT_NEAR(t[2][5][1].item<float>(), rgb.at<cv::Vec3b>(5, 1)[2] / 127.5 - 1.0, 1e-6);
  EXPECT_GE(t.min().item<float>(), -1.0f);
  EXPECT_LE(t.max().item<float>(), 1.0f);
  EXPECT_TRUE(same_pixels(rgb, data::tensor_to_image(t)));
  EXPECT_TRUE(same_pixels(rgb, data::tensor_to_image(t.unsqueeze(0))));
  // Out-of-range values are clamped, not wrapped.
  const cv::Mat clamped = data::tensor_to_image(torch::full({3, 2, 2}, 3.0) * torch::tensor({1.0, -1.0, 0.0}).view({3, 1, 1}));
  EXPECT_EQ(clamped.at<cv::Vec3b>(0, 0), cv::Vec3b(255, 0, 128));
  EXPECT_THROW(data::tensor_to_image(torch::zeros({4, 2, 2})), ganlite::Error);
  EXPECT_THROW(data::tensor_to_image(torch::zeros({2, 3, 2, 2})), ganlite::Error);
}

}  // namespace
