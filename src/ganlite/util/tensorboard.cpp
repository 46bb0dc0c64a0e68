#include "ganlite/util/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "ganlite/util/tensorboard_event.pb.h"

namespace ganlite {

namespace fs = std::filesystem;
namespace tbp = tensorboard_proto;

namespace {

constexpr const char* kEventFilePrefix = "events.out.tfevents.";
constexpr const char* kFileVersion = "brain.Event:2";  // TensorBoard's current event file version

// Byte-wise table of the reflected CRC-32C polynomial.
const std::array<uint32_t, 256>& crc32c_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
      t[i] = crc;
    }
    return t;
  }();
  return table;
}

void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint64_t get_le(std::string_view in, size_t offset, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(in[offset + i])) << (8 * i);
  return value;
}

double unix_seconds_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  std::string host(name);
  std::replace(host.begin(), host.end(), '/', '_');  // a file name part
  return host;
}

// The payloads of the complete, CRC-valid records of `bytes`, in order; *complete false when
// anything follows the last of them.
std::vector<std::string_view> tfrecord_payloads(std::string_view bytes, bool* complete) {
  std::vector<std::string_view> payloads;
  size_t pos = 0;
  *complete = true;
  while (pos < bytes.size()) {
    const size_t left = bytes.size() - pos;
    if (left < 16) break;
    const uint64_t length = get_le(bytes, pos, 8);
    if (static_cast<uint32_t>(get_le(bytes, pos + 8, 4)) != masked_crc32c(bytes.substr(pos, 8))) break;
    if (length > left - 16) break;
    const std::string_view payload = bytes.substr(pos + 12, length);
    if (static_cast<uint32_t>(get_le(bytes, pos + 12 + length, 4)) != masked_crc32c(payload)) break;
    payloads.push_back(payload);
    pos += 16 + length;
  }
  *complete = pos == bytes.size();
  return payloads;
}

EventRecord to_record(const tbp::Event& event) {
  EventRecord r;
  r.wall_time = event.wall_time();
  r.step = event.step();
  r.file_version = event.file_version();
  r.has_summary = event.has_summary();
  for (const auto& value : event.summary().value()) {
    if (value.has_image()) {
      const auto& image = value.image();
      r.images.push_back({value.tag(), image.height(), image.width(), image.colorspace(), image.encoded_image_string()});
    } else if (value.value_case() == tbp::Summary::Value::kSimpleValue) {
      r.scalars.push_back({value.tag(), static_cast<double>(value.simple_value())});
    }
  }
  return r;
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  const auto& table = crc32c_table();
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) crc = table[(crc ^ static_cast<unsigned char>(c)) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string tfrecord_frame(std::string_view payload) {
  std::string header;
  put_le(header, payload.size(), 8);
  std::string record = header;
  put_le(record, masked_crc32c(header), 4);
  record.append(payload);
  put_le(record, masked_crc32c(payload), 4);
  return record;
}

std::string event_file_name(int64_t unix_seconds, const std::string& host) {
  return kEventFilePrefix + std::to_string(unix_seconds) + "." + host;
}

bool is_event_file_name(const std::string& filename) { return filename.rfind(kEventFilePrefix, 0) == 0; }

EventFileWriter::EventFileWriter(fs::path dir) : dir_(std::move(dir)) {}

void EventFileWriter::open() {
  const double now = unix_seconds_now();
  const std::string base = event_file_name(static_cast<int64_t>(std::floor(now)), host_name());
  fs::path path = dir_ / base;
  for (int n = 1; fs::exists(path); ++n) path = dir_ / (base + "." + std::to_string(n));
  out_.open(path, std::ios::binary | std::ios::out);
  if (!out_) throw Error("cannot create the TensorBoard event file '" + path.string() + "'");
  path_ = path;
  tbp::Event first;
  first.set_wall_time(now);
  first.set_file_version(kFileVersion);
  write_event(first.SerializeAsString());
}

void EventFileWriter::write_event(const std::string& payload) {
  out_ << tfrecord_frame(payload);
  out_.flush();
  if (!out_) throw Error("cannot write to the TensorBoard event file '" + path_.string() + "'");
}

void EventFileWriter::add_scalars(int64_t step, const std::vector<EventScalar>& scalars) {
  if (scalars.empty()) return;
  if (path_.empty()) open();
  tbp::Event event;
  event.set_wall_time(unix_seconds_now());
  event.set_step(step);
  auto* summary = event.mutable_summary();
  for (const auto& s : scalars) {
    auto* value = summary->add_value();
    value->set_tag(s.tag);
    value->set_simple_value(static_cast<float>(s.value));
  }
  write_event(event.SerializeAsString());
}

void EventFileWriter::add_image(int64_t step, const EventImage& image) {
  if (path_.empty()) open();
  tbp::Event event;
  event.set_wall_time(unix_seconds_now());
  event.set_step(step);
  auto* value = event.mutable_summary()->add_value();
  value->set_tag(image.tag);
  auto* encoded = value->mutable_image();
  encoded->set_height(image.height);
  encoded->set_width(image.width);
  encoded->set_colorspace(image.colorspace);
  encoded->set_encoded_image_string(image.png);
  write_event(event.SerializeAsString());
}

EventFileContents read_event_file(const fs::path& path) {
  const std::string bytes = read_file(path);
  EventFileContents contents;
  for (const auto payload : tfrecord_payloads(bytes, &contents.complete)) {
    tbp::Event event;
    if (!event.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      contents.complete = false;
      break;
    }
    contents.events.push_back(to_record(event));
  }
  return contents;
}

std::vector<fs::path> event_files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && is_event_file_name(entry.path().filename().string())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

size_t cut_event_files_after(const fs::path& dir, int64_t last_step) {
  size_t dropped = 0;
  for (const auto& path : event_files_in(dir)) {
    const std::string bytes = read_file(path);
    bool complete = true;
    std::string kept;
    size_t dropped_here = 0;
    for (const auto payload : tfrecord_payloads(bytes, &complete)) {
      tbp::Event event;
      const bool parsed = event.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
      if (!parsed || (event.has_summary() && event.step() > last_step)) {
        ++dropped_here;
        continue;
      }
      kept += tfrecord_frame(payload);
    }
    if (dropped_here > 0 || !complete) write_file_atomic(path, kept);
    dropped += dropped_here;
  }
  return dropped;
}

void remove_event_files(const fs::path& dir) {
  for (const auto& path : event_files_in(dir)) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) throw Error("cannot remove '" + path.string() + "': " + ec.message());
  }
}

}  // namespace ganlite
