// TensorBoard event files (`tensorboard --logdir RUN` reads them): scalars and PNG images written
// as TensorBoard's own writers do. A file is a sequence of TFRecords (uint64 length, masked CRC32C
// of the length, the payload, masked CRC32C of the payload; little endian) whose payloads are
// Event protos (util/tensorboard_event.proto, TensorBoard's field numbers): first one with
// file_version "brain.Event:2", then one per logged step with its wall time and a Summary.
//
// The files are a log, appended to and flushed after every event, so a killed process leaves
// complete records followed at most by one torn record, which TensorBoard ignores.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace ganlite {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses it.
uint32_t crc32c(std::string_view bytes);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(std::string_view bytes);
// One TFRecord: length, masked CRC of the length, payload, masked CRC of the payload.
std::string tfrecord_frame(std::string_view payload);

// TensorBoard's file name: events.out.tfevents.<unix seconds>.<host>.
std::string event_file_name(int64_t unix_seconds, const std::string& host);
// True for the event files TensorBoard reads in a folder (names starting "events.out.tfevents.").
bool is_event_file_name(const std::string& filename);

struct EventScalar {
  std::string tag;
  double value = 0.0;  // stored as float32 (TensorBoard's simple_value)
};

struct EventImage {
  std::string tag;
  int height = 0;
  int width = 0;
  int colorspace = 3;  // 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
  std::string png;     // the encoded image
};

// Appends events to one file in a folder. The file is created by the first event written (a run
// that fails before logging anything leaves none), named event_file_name(now, host), with a ".N"
// suffix when that name is taken (a resumed run within the same second): TensorBoard reads
// every event file of the folder in name order.
class EventFileWriter {
 public:
  explicit EventFileWriter(std::filesystem::path dir);
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  // One event at `step` holding every scalar; flushed. Throws Error naming the file when it
  // cannot be written.
  void add_scalars(int64_t step, const std::vector<EventScalar>& scalars);
  void add_image(int64_t step, const EventImage& image);
  // Empty until the first event is written.
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_event(const std::string& payload);
  void open();

  std::filesystem::path dir_;
  std::filesystem::path path_;
  std::ofstream out_;
};

// What an event file holds, read back (resume, tests).
struct EventRecord {
  double wall_time = 0.0;
  int64_t step = 0;
  std::string file_version;  // set on the first event of a file only
  bool has_summary = false;
  std::vector<EventScalar> scalars;  // value: the float32 stored, widened
  std::vector<EventImage> images;
};

struct EventFileContents {
  std::vector<EventRecord> events;
  // False when reading stopped before the end: an incomplete last record (a killed writer), or a
  // record whose CRC or payload is bad (then nothing after it is read).
  bool complete = true;
};

EventFileContents read_event_file(const std::filesystem::path& path);

// The event files directly in `dir`, in name order (the order TensorBoard reads them).
std::vector<std::filesystem::path> event_files_in(const std::filesystem::path& dir);

// For a run resumed from its checkpoint at `last_step`: drops every summary event past it (and a
// torn last record) from the event files in `dir`, rewriting a file atomically only when it
// changes, so that TensorBoard shows each step once, as metrics.jsonl does. Returns how many
// events were dropped.
size_t cut_event_files_after(const std::filesystem::path& dir, int64_t last_step);

// Removes the event files in `dir` (a run started again from step 0).
void remove_event_files(const std::filesystem::path& dir);

}  // namespace ganlite
