// A small ZIP reader (STORED and DEFLATE, ZIP64) and a STORED writer: enough for numpy's
// .npz files and PyTorch's zip checkpoints. Archives are held in memory; malformed input throws
// Error naming the archive and entry, never crashes. Entries must not overlap, and an entry
// inflates into memory only as far as its data actually decompresses (at most ~1032x its
// compressed size, DEFLATE's limit), so an archive cannot ask for more memory than ~1032x its
// own size.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // Reads the whole archive; throws Error naming the file when it is missing or not a zip.
  explicit ZipReader(const std::filesystem::path& path);
  // An archive already in memory; `source` names it in error messages.
  ZipReader(std::string bytes, std::string source);

  // Entries in central-directory order.
  const std::vector<ZipEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const;
  // The decompressed, CRC-checked content of an entry; throws Error naming the entry.
  std::string read(const std::string& name) const;
  std::string read(const ZipEntry& entry) const;
  const std::string& source() const { return source_; }

 private:
  void parse_central_directory();
  void refuse_overlapping_entries() const;

  std::string bytes_;
  std::string source_;
  std::vector<ZipEntry> entries_;
};

// True when `bytes` start with a zip local-file or end-of-archive signature.
bool looks_like_zip(const std::string& bytes);

// Builds a STORED (uncompressed) archive in memory, adding ZIP64 records when sizes or offsets
// pass 4 GiB. Write the result with write_file_atomic.
class ZipWriter {
 public:
  void add(const std::string& name, const std::string& data);
  std::string finish();

 private:
  std::string out_;
  std::vector<ZipEntry> entries_;
  bool finished_ = false;
};

// CRC-32 as zip uses it (zlib's).
uint32_t zip_crc32(const std::string& data);

}  // namespace ganlite::io
