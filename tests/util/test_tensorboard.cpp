// TensorBoard event files (util/tensorboard.h): CRC32C known answers, the TFRecord framing, and a
// written file read back by an independent reader (read_tfevents.py: its own CRC32C, protobuf
// wire decoder and PNG decoder; skipped without /usr/bin/python3) and by the library's reader;
// torn and corrupt records; the cut a resumed run makes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/tensorboard.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::EventImage;
using ganlite::EventScalar;
using ganlite::testing::TempDir;

namespace {

// A 7 x 5 RGB image whose every byte differs from its neighbours', and its PNG (RGB order).
cv::Mat tb_known_image() {
  cv::Mat rgb(5, 7, CV_8UC3);
  for (int y = 0; y < rgb.rows; ++y) {
    for (int x = 0; x < rgb.cols; ++x) rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(37 * y + 11 * x), uchar(200 - 13 * x), uchar(5 * x * y + 3));
  }
  return rgb;
}

std::string tb_png_of(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> png;
  EXPECT_TRUE(cv::imencode(".png", bgr, png));
  return std::string(png.begin(), png.end());
}

std::string tb_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (const unsigned char c : bytes) {
    hex.push_back(digits[c >> 4]);
    hex.push_back(digits[c & 15]);
  }
  return hex;
}

// The scalars the test writes: exact float32 values among them, and ones float32 rounds.
const std::vector<std::pair<int64_t, std::vector<EventScalar>>>& tb_known_scalars() {
  static const std::vector<std::pair<int64_t, std::vector<EventScalar>>> scalars{
      {1, {{"loss/G_GAN", 0.6931471805599453}, {"loss/G_L1", 0.0}, {"lr", 2e-4}}},
      {2, {{"loss/G_GAN", -1.5}, {"loss/G_L1", 1.0 / 3.0}, {"lr", 2e-4}}},
      {1000000, {{"val/psnr", 21.25}, {"val/ssim", 1e-30}, {"big", 3.0e38}}},
  };
  return scalars;
}

const int64_t kImageStep = 7;

// Writes the known scalars and the known image (between the second and third scalar events).
fs::path tb_write_known_file(const fs::path& dir) {
  ganlite::EventFileWriter writer(dir);
  EXPECT_TRUE(writer.path().empty()) << "no file before the first event";
  const auto& scalars = tb_known_scalars();
  writer.add_scalars(scalars[0].first, scalars[0].second);
  writer.add_scalars(scalars[1].first, scalars[1].second);
  const cv::Mat image = tb_known_image();
  writer.add_image(kImageStep, EventImage{"samples", image.rows, image.cols, 3, tb_png_of(image)});
  writer.add_scalars(scalars[2].first, scalars[2].second);
  return writer.path();
}

// The independent reader's JSON, or a gtest failure.
nlohmann::json tb_python_read(const fs::path& file, int* exit_code = nullptr) {
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " '" GANLITE_SOURCE_DIR
                                               "/tests/util/read_tfevents.py' '" + file.string() + "'");
  if (exit_code) *exit_code = r.exit_code;
  if (r.exit_code != 0) return nlohmann::json{{"error", r.output}};
  return nlohmann::json::parse(r.output);
}

}  // namespace

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(ganlite::crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(ganlite::crc32c(""), 0u);
  EXPECT_EQ(ganlite::crc32c(std::string(32, '\0')), 0x8A9136AAu);    // RFC 3720 B.4
  EXPECT_EQ(ganlite::crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720 B.4
  const uint32_t crc = ganlite::crc32c("123456789");
  EXPECT_EQ(ganlite::masked_crc32c("123456789"), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TfRecord, FramesLengthPayloadAndTheirMaskedCrcs) {
  const std::string record = ganlite::tfrecord_frame("abc");
  ASSERT_EQ(record.size(), 8u + 4u + 3u + 4u);
  EXPECT_EQ(record.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));  // uint64 little endian
  auto le32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(record[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(le32(8), ganlite::masked_crc32c(record.substr(0, 8)));
  EXPECT_EQ(record.substr(12, 3), "abc");
  EXPECT_EQ(le32(15), ganlite::masked_crc32c("abc"));
}

TEST(EventFile, IndependentReaderSeesEveryScalarAndTheImage) {
  if (ganlite::testing::system_python().empty()) GTEST_SKIP() << "no /usr/bin/python3 for the independent reader";
  TempDir dir;
  const double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const fs::path file = tb_write_known_file(dir.path());
  const double after = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  EXPECT_TRUE(std::regex_match(file.filename().string(), std::regex("events\\.out\\.tfevents\\.[0-9]{10}\\." +
                                                                    std::regex_replace(host, std::regex("[.]"), "\\.")) ))
      << file;

  const nlohmann::json read = tb_python_read(file);
  ASSERT_FALSE(read.contains("error")) << read.dump();
  EXPECT_FALSE(read.at("torn_tail").get<bool>());
  const auto& events = read.at("events");
  ASSERT_EQ(events.size(), 5u) << read.dump();
  EXPECT_EQ(events[0].at("file_version"), "brain.Event:2");
  EXPECT_TRUE(events[0].at("values").empty());
  for (const auto& event : events) {
    EXPECT_GE(event.at("wall_time").get<double>(), std::floor(before));
    EXPECT_LE(event.at("wall_time").get<double>(), after + 1);
  }
  // Scalars: events 1, 2 and 4, each with its step and every value, float32 exact.
  const auto& scalars = tb_known_scalars();
  const size_t scalar_events[] = {1, 2, 4};
  for (size_t k = 0; k < 3; ++k) {
    const auto& event = events[scalar_events[k]];
    EXPECT_EQ(event.at("step").get<int64_t>(), scalars[k].first);
    EXPECT_FALSE(event.contains("file_version"));
    ASSERT_EQ(event.at("values").size(), scalars[k].second.size());
    for (size_t i = 0; i < scalars[k].second.size(); ++i) {
      const auto& value = event.at("values")[i];
      EXPECT_EQ(value.at("tag"), scalars[k].second[i].tag);
      EXPECT_EQ(value.at("simple_value").get<double>(), static_cast<double>(static_cast<float>(scalars[k].second[i].value)))
          << value.dump();
    }
  }
  // The image: its header, its PNG bytes, and the pixels the reader's own PNG decoder finds.
  const auto& image_event = events[3];
  EXPECT_EQ(image_event.at("step").get<int64_t>(), kImageStep);
  ASSERT_EQ(image_event.at("values").size(), 1u);
  EXPECT_EQ(image_event.at("values")[0].at("tag"), "samples");
  const auto& image = image_event.at("values")[0].at("image");
  const cv::Mat known = tb_known_image();
  EXPECT_EQ(image.at("height"), 5);
  EXPECT_EQ(image.at("width"), 7);
  EXPECT_EQ(image.at("colorspace"), 3);
  EXPECT_EQ(image.at("png_hex"), tb_hex(tb_png_of(known)));
  EXPECT_EQ(image.at("png").at("width"), 7);
  EXPECT_EQ(image.at("png").at("height"), 5);
  EXPECT_EQ(image.at("png").at("channels"), 3);
  EXPECT_EQ(image.at("png").at("pixels_hex"),
            tb_hex(std::string(reinterpret_cast<const char*>(known.data), known.total() * known.elemSize())));
}

TEST(EventFile, LibraryReaderRoundTripsWhatWasWritten) {
  TempDir dir;
  const fs::path file = tb_write_known_file(dir.path());
  EXPECT_EQ(ganlite::event_files_in(dir.path()), std::vector<fs::path>{file});
  const auto contents = ganlite::read_event_file(file);
  EXPECT_TRUE(contents.complete);
  ASSERT_EQ(contents.events.size(), 5u);
  EXPECT_EQ(contents.events[0].file_version, "brain.Event:2");
  EXPECT_FALSE(contents.events[0].has_summary);
  const auto& scalars = tb_known_scalars();
  const size_t scalar_events[] = {1, 2, 4};
  for (size_t k = 0; k < 3; ++k) {
    const auto& event = contents.events[scalar_events[k]];
    EXPECT_EQ(event.step, scalars[k].first);
    ASSERT_EQ(event.scalars.size(), scalars[k].second.size());
    for (size_t i = 0; i < event.scalars.size(); ++i) {
      EXPECT_EQ(event.scalars[i].tag, scalars[k].second[i].tag);
      EXPECT_EQ(event.scalars[i].value, static_cast<double>(static_cast<float>(scalars[k].second[i].value)));
    }
  }
  ASSERT_EQ(contents.events[3].images.size(), 1u);
  EXPECT_EQ(contents.events[3].images[0].png, tb_png_of(tb_known_image()));
}

TEST(EventFile, TornLastRecordIsReportedAndCutOnResume) {
  TempDir dir;
  const fs::path file = tb_write_known_file(dir.path());
  const std::string whole = ganlite::read_file(file);
  // A writer killed in the middle of its next record: half of it reached the file.
  const std::string next = ganlite::tfrecord_frame(std::string(40, 'x'));
  ganlite::testing::write_text_file(file, whole + next.substr(0, next.size() / 2));
  auto contents = ganlite::read_event_file(file);
  EXPECT_FALSE(contents.complete);
  EXPECT_EQ(contents.events.size(), 5u);
  if (!ganlite::testing::system_python().empty()) {
    const nlohmann::json read = tb_python_read(file);
    ASSERT_FALSE(read.contains("error")) << read.dump();
    EXPECT_TRUE(read.at("torn_tail").get<bool>());
    EXPECT_EQ(read.at("events").size(), 5u);
  }
  // Resumed from a checkpoint at step 2: the image (7), the step 1000000 event and the torn tail go.
  EXPECT_EQ(ganlite::cut_event_files_after(dir.path(), 2), 2u);
  contents = ganlite::read_event_file(file);
  EXPECT_TRUE(contents.complete);
  ASSERT_EQ(contents.events.size(), 3u);
  EXPECT_EQ(contents.events[0].file_version, "brain.Event:2");
  EXPECT_EQ(contents.events[2].step, 2);
  const std::string cut = ganlite::read_file(file);
  EXPECT_EQ(cut, whole.substr(0, cut.size()));  // the records kept, byte for byte
  EXPECT_EQ(ganlite::cut_event_files_after(dir.path(), 2), 0u);
}

TEST(EventFile, CorruptRecordStopsBothReaders) {
  TempDir dir;
  const fs::path file = tb_write_known_file(dir.path());
  std::string bytes = ganlite::read_file(file);
  // Flip one byte inside the payload of the second record (the first scalar event).
  const size_t first_record = 16 + (static_cast<unsigned char>(bytes[0]) | (static_cast<unsigned char>(bytes[1]) << 8));
  bytes[first_record + 14] ^= 0x01;
  ganlite::testing::write_text_file(file, bytes);
  const auto contents = ganlite::read_event_file(file);
  EXPECT_FALSE(contents.complete);
  EXPECT_EQ(contents.events.size(), 1u);
  if (!ganlite::testing::system_python().empty()) {
    int exit_code = 0;
    const nlohmann::json read = tb_python_read(file, &exit_code);
    EXPECT_NE(exit_code, 0);
    EXPECT_NE(read.dump().find("bad payload CRC"), std::string::npos) << read.dump();
  }
}

TEST(EventFile, EachWriterHasItsOwnFileAndRemovalTakesOnlyEventFiles) {
  TempDir dir;
  ganlite::write_file_atomic(dir / "metrics.jsonl", std::string("{}\n"));
  ganlite::EventFileWriter a(dir.path());
  ganlite::EventFileWriter b(dir.path());
  a.add_scalars(1, {{"x", 1.0}});
  b.add_scalars(2, {{"x", 2.0}});
  a.add_scalars(3, {{"x", 3.0}});
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(ganlite::event_files_in(dir.path()).size(), 2u);
  EXPECT_EQ(ganlite::read_event_file(a.path()).events.size(), 3u);
  EXPECT_EQ(ganlite::read_event_file(b.path()).events.size(), 2u);
  ganlite::remove_event_files(dir.path());
  EXPECT_TRUE(ganlite::event_files_in(dir.path()).empty());
  EXPECT_TRUE(fs::exists(dir / "metrics.jsonl"));
}
