#include "ganlite/io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::io {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t k32Max = 0xFFFFFFFFu;
constexpr size_t kEndSize = 22;
constexpr size_t kLocatorSize = 20;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;

// Bounds-checked little-endian reads; every read of archive data goes through here.
class Cursor {
 public:
  Cursor(const std::string& bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  void need(uint64_t pos, uint64_t n, const char* what) const {
    if (pos > bytes_.size() || n > bytes_.size() - pos) {
      throw Error(source_ + ": truncated or corrupt zip archive (" + what + " at offset " + std::to_string(pos) +
                  " runs past the end of the " + std::to_string(bytes_.size()) + "-byte file)");
    }
  }
  template <typename T>
  T get(uint64_t pos, const char* what) const {
    need(pos, sizeof(T), what);
    T value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      value |= static_cast<T>(static_cast<T>(static_cast<unsigned char>(bytes_[pos + i])) << (8 * i));
    }
    return value;
  }

 private:
  const std::string& bytes_;
  const std::string& source_;
};

template <typename T>
void put(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF));
}

// Inflates into a buffer grown with the output actually produced, up to `expected` bytes: a
// lying uncompressed size cannot make us allocate more than the data decompresses to.
std::string inflate_raw(const char* data, uint64_t size, uint64_t expected, const std::string& what) {
  std::string out;
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error(what + ": zlib inflateInit failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
  uint64_t in_left = size;
  uint64_t produced = 0;
  int rc = Z_OK;
  // zlib counts in 32 bits: feed large entries in chunks.
  while (rc == Z_OK) {
    if (produced == out.size() && out.size() < expected) {
      out.resize(static_cast<size_t>(std::min<uint64_t>(expected, std::max<uint64_t>(2 * out.size(), 1u << 16))));
    }
    const auto in_chunk = static_cast<uInt>(std::min<uint64_t>(in_left, 1u << 30));
    const auto out_chunk = static_cast<uInt>(std::min<uint64_t>(out.size() - produced, 1u << 30));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_in = in_chunk;
    zs.avail_out = out_chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= in_chunk - zs.avail_in;
    produced += out_chunk - zs.avail_out;
    if (rc == Z_BUF_ERROR && (in_left == 0 || produced == expected)) break;  // no progress possible
  }
  const std::string message = zs.msg ? zs.msg : "code " + std::to_string(rc);
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || produced != expected) {
    throw Error(what + ": corrupt DEFLATE data (zlib: " + message + ", " + std::to_string(produced) + " of " +
                std::to_string(expected) + " bytes)");
  }
  out.resize(static_cast<size_t>(produced));
  return out;
}

}  // namespace

uint32_t zip_crc32(const std::string& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(data.data());
  size_t left = data.size();
  while (left > 0) {
    const auto chunk = static_cast<uInt>(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    left -= chunk;
  }
  return static_cast<uint32_t>(crc);
}

bool looks_like_zip(const std::string& bytes) {
  if (bytes.size() < 4) return false;
  static const std::string kNoName;
  const Cursor c(bytes, kNoName);
  const auto sig = c.get<uint32_t>(0, "signature");
  return sig == kLocalHeaderSig || sig == kEndSig;
}

ZipReader::ZipReader(const std::filesystem::path& path) : bytes_(read_file(path)), source_(path.string()) {
  parse_central_directory();
}

ZipReader::ZipReader(std::string bytes, std::string source) : bytes_(std::move(bytes)), source_(std::move(source)) {
  parse_central_directory();
}

void ZipReader::parse_central_directory() {
  const Cursor c(bytes_, source_);
  if (bytes_.size() < kEndSize) throw Error(source_ + ": not a zip archive (only " + std::to_string(bytes_.size()) + " bytes)");
  // The end record sits in the last 22 + 65535 (comment) bytes; search backwards.
  uint64_t end_pos = 0;
  bool found = false;
  const uint64_t lowest = bytes_.size() > kEndSize + 0xFFFF ? bytes_.size() - kEndSize - 0xFFFF : 0;
  for (uint64_t pos = bytes_.size() - kEndSize + 1; pos-- > lowest;) {
    if (c.get<uint32_t>(pos, "end record") == kEndSig) {
      end_pos = pos;
      found = true;
      break;
    }
  }
  if (!found) throw Error(source_ + ": not a zip archive (no end-of-central-directory record)");

  uint64_t count = c.get<uint16_t>(end_pos + 10, "end record");
  uint64_t cd_size = c.get<uint32_t>(end_pos + 12, "end record");
  uint64_t cd_offset = c.get<uint32_t>(end_pos + 16, "end record");
  if ((count == 0xFFFF || cd_size == k32Max || cd_offset == k32Max) && end_pos >= kLocatorSize &&
      c.get<uint32_t>(end_pos - kLocatorSize, "zip64 locator") == kZip64LocatorSig) {
    const auto rec = c.get<uint64_t>(end_pos - kLocatorSize + 8, "zip64 locator");
    if (c.get<uint32_t>(rec, "zip64 end record") != kZip64EndSig) {
      throw Error(source_ + ": corrupt zip archive (bad ZIP64 end record signature)");
    }
    count = c.get<uint64_t>(rec + 32, "zip64 end record");
    cd_size = c.get<uint64_t>(rec + 40, "zip64 end record");
    cd_offset = c.get<uint64_t>(rec + 48, "zip64 end record");
  }
  c.need(cd_offset, cd_size, "central directory");
  // Each central header takes at least 46 bytes: a bogus count cannot make us allocate much.
  if (count > cd_size / kCentralHeaderSize + 1) {
    throw Error(source_ + ": corrupt zip archive (" + std::to_string(count) + " entries claimed in a " +
                std::to_string(cd_size) + "-byte central directory)");
  }
  entries_.reserve(count);
  uint64_t pos = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (c.get<uint32_t>(pos, "central directory header") != kCentralHeaderSig) {
      throw Error(source_ + ": corrupt zip archive (bad central directory header #" + std::to_string(i) + ")");
    }
    ZipEntry e;
    const auto flags = c.get<uint16_t>(pos + 8, "central directory header");
    e.method = c.get<uint16_t>(pos + 10, "central directory header");
    e.crc32 = c.get<uint32_t>(pos + 16, "central directory header");
    e.compressed_size = c.get<uint32_t>(pos + 20, "central directory header");
    e.uncompressed_size = c.get<uint32_t>(pos + 24, "central directory header");
    const auto name_len = c.get<uint16_t>(pos + 28, "central directory header");
    const auto extra_len = c.get<uint16_t>(pos + 30, "central directory header");
    const auto comment_len = c.get<uint16_t>(pos + 32, "central directory header");
    e.local_header_offset = c.get<uint32_t>(pos + 42, "central directory header");
    c.need(pos + kCentralHeaderSize, uint64_t{name_len} + extra_len + comment_len, "central directory entry");
    e.name = bytes_.substr(pos + kCentralHeaderSize, name_len);
    if (flags & 1u) throw Error(source_ + ": entry '" + e.name + "' is encrypted (not supported)");
    // ZIP64 extra field: 64-bit values for exactly those fields saturated above, in this order.
    uint64_t x = pos + kCentralHeaderSize + name_len;
    const uint64_t x_end = x + extra_len;
    while (x + 4 <= x_end) {
      const auto id = c.get<uint16_t>(x, "extra field");
      const auto len = c.get<uint16_t>(x + 2, "extra field");
      if (x + 4 + len > x_end) break;
      if (id == kZip64ExtraId) {
        uint64_t f = x + 4;
        const uint64_t f_end = f + len;
        auto take = [&](uint64_t& field) {
          if (f + 8 > f_end) throw Error(source_ + ": entry '" + e.name + "': truncated ZIP64 extra field");
          field = c.get<uint64_t>(f, "ZIP64 extra field");
          f += 8;
        };
        if (e.uncompressed_size == k32Max) take(e.uncompressed_size);
        if (e.compressed_size == k32Max) take(e.compressed_size);
        if (e.local_header_offset == k32Max) take(e.local_header_offset);
      }
      x += 4 + len;
    }
    entries_.push_back(std::move(e));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
  refuse_overlapping_entries();
}

// Entries whose data overlap are the trick of "overlapping" zip bombs: many entries inflating
// the same compressed bytes. Disjoint entries bound the total output by DEFLATE's ratio times
// the file size.
void ZipReader::refuse_overlapping_entries() const {
  const Cursor c(bytes_, source_);
  std::vector<std::pair<uint64_t, uint64_t>> spans;  // [local header, end of data)
  spans.reserve(entries_.size());
  for (const auto& e : entries_) {
    const uint64_t header = e.local_header_offset;
    const auto name_len = c.get<uint16_t>(header + 26, "local header");
    const auto extra_len = c.get<uint16_t>(header + 28, "local header");
    const uint64_t data = header + kLocalHeaderSize + name_len + extra_len;
    c.need(data, e.compressed_size, "entry data");
    spans.emplace_back(header, data + e.compressed_size);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].first < spans[i - 1].second) {
      throw Error(source_ + ": corrupt zip archive (entries overlap at offset " + std::to_string(spans[i].first) + ")");
    }
  }
}

bool ZipReader::contains(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const ZipEntry& e) { return e.name == name; });
}

std::string ZipReader::read(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return read(e);
  }
  std::string names;
  for (size_t i = 0; i < entries_.size() && i < 10; ++i) names += (i ? ", " : "") + entries_[i].name;
  if (entries_.size() > 10) names += ", ...";
  throw Error(source_ + ": no entry '" + name + "' in the archive (entries: " + names + ")");
}

std::string ZipReader::read(const ZipEntry& e) const {
  const std::string what = source_ + ": entry '" + e.name + "'";
  const Cursor c(bytes_, what);
  if (c.get<uint32_t>(e.local_header_offset, "local header") != kLocalHeaderSig) {
    throw Error(what + ": corrupt zip archive (bad local header signature)");
  }
  // Sizes come from the central directory: numpy writes 0xFFFFFFFF here (ZIP64 forced).
  const auto name_len = c.get<uint16_t>(e.local_header_offset + 26, "local header");
  const auto extra_len = c.get<uint16_t>(e.local_header_offset + 28, "local header");
  const uint64_t data = e.local_header_offset + kLocalHeaderSize + name_len + extra_len;
  c.need(data, e.compressed_size, "entry data");
  std::string out;
  if (e.method == 0) {
    if (e.compressed_size != e.uncompressed_size) throw Error(what + ": stored entry with mismatched sizes");
    out = bytes_.substr(data, e.compressed_size);
  } else if (e.method == 8) {
    // DEFLATE expands at most ~1032:1; a larger claim is corruption, not a reason to allocate.
    if (e.uncompressed_size > e.compressed_size * 1032 + 1024) {
      throw Error(what + ": corrupt sizes (" + std::to_string(e.compressed_size) + " compressed bytes cannot hold " +
                  std::to_string(e.uncompressed_size) + ")");
    }
    out = inflate_raw(bytes_.data() + data, e.compressed_size, e.uncompressed_size, what);
  } else {
    throw Error(what + ": compression method " + std::to_string(e.method) + " not supported (valid: 0 stored, 8 deflate)");
  }
  if (zip_crc32(out) != e.crc32) throw Error(what + ": CRC mismatch (corrupt data)");
  return out;
}

void ZipWriter::add(const std::string& name, const std::string& data) {
  if (finished_) throw Error("zip writer: add('" + name + "') after finish()");
  if (name.size() > 0xFFFF) throw Error("zip writer: entry name too long");
  ZipEntry e;
  e.name = name;
  e.crc32 = zip_crc32(data);
  e.compressed_size = e.uncompressed_size = data.size();
  e.local_header_offset = out_.size();
  const bool zip64 = data.size() >= k32Max;
  put<uint32_t>(out_, kLocalHeaderSig);
  put<uint16_t>(out_, zip64 ? 45 : 20);  // version needed
  put<uint16_t>(out_, 0);                // flags
  put<uint16_t>(out_, 0);                // stored
  put<uint16_t>(out_, 0);                // time 00:00
  put<uint16_t>(out_, 0x21);             // date 1980-01-01
  put<uint32_t>(out_, e.crc32);
  put<uint32_t>(out_, zip64 ? k32Max : static_cast<uint32_t>(data.size()));
  put<uint32_t>(out_, zip64 ? k32Max : static_cast<uint32_t>(data.size()));
  put<uint16_t>(out_, static_cast<uint16_t>(name.size()));
  put<uint16_t>(out_, zip64 ? 20 : 0);
  out_ += name;
  if (zip64) {
    put<uint16_t>(out_, kZip64ExtraId);
    put<uint16_t>(out_, 16);
    put<uint64_t>(out_, data.size());
    put<uint64_t>(out_, data.size());
  }
  out_ += data;
  entries_.push_back(std::move(e));
}

std::string ZipWriter::finish() {
  if (finished_) throw Error("zip writer: finish() called twice");
  finished_ = true;
  const uint64_t cd_offset = out_.size();
  for (const auto& e : entries_) {
    const bool big_size = e.uncompressed_size >= k32Max;
    const bool big_offset = e.local_header_offset >= k32Max;
    const uint16_t extra = static_cast<uint16_t>((big_size ? 16 : 0) + (big_offset ? 8 : 0));
    put<uint32_t>(out_, kCentralHeaderSig);
    put<uint16_t>(out_, 45);  // made by
    put<uint16_t>(out_, (big_size || big_offset) ? 45 : 20);
    put<uint16_t>(out_, 0);
    put<uint16_t>(out_, 0);
    put<uint16_t>(out_, 0);
    put<uint16_t>(out_, 0x21);
    put<uint32_t>(out_, e.crc32);
    put<uint32_t>(out_, big_size ? k32Max : static_cast<uint32_t>(e.compressed_size));
    put<uint32_t>(out_, big_size ? k32Max : static_cast<uint32_t>(e.uncompressed_size));
    put<uint16_t>(out_, static_cast<uint16_t>(e.name.size()));
    put<uint16_t>(out_, extra ? static_cast<uint16_t>(extra + 4) : 0);
    put<uint16_t>(out_, 0);  // comment
    put<uint16_t>(out_, 0);  // disk
    put<uint16_t>(out_, 0);  // internal attributes
    put<uint32_t>(out_, 0);  // external attributes
    put<uint32_t>(out_, big_offset ? k32Max : static_cast<uint32_t>(e.local_header_offset));
    out_ += e.name;
    if (extra) {
      put<uint16_t>(out_, kZip64ExtraId);
      put<uint16_t>(out_, extra);
      if (big_size) {
        put<uint64_t>(out_, e.uncompressed_size);
        put<uint64_t>(out_, e.compressed_size);
      }
      if (big_offset) put<uint64_t>(out_, e.local_header_offset);
    }
  }
  const uint64_t cd_size = out_.size() - cd_offset;
  const uint64_t count = entries_.size();
  const bool zip64 = count >= 0xFFFF || cd_size >= k32Max || cd_offset >= k32Max;
  if (zip64) {
    const uint64_t rec = out_.size();
    put<uint32_t>(out_, kZip64EndSig);
    put<uint64_t>(out_, 44);  // size of the rest of this record
    put<uint16_t>(out_, 45);
    put<uint16_t>(out_, 45);
    put<uint32_t>(out_, 0);
    put<uint32_t>(out_, 0);
    put<uint64_t>(out_, count);
    put<uint64_t>(out_, count);
    put<uint64_t>(out_, cd_size);
    put<uint64_t>(out_, cd_offset);
    put<uint32_t>(out_, kZip64LocatorSig);
    put<uint32_t>(out_, 0);
    put<uint64_t>(out_, rec);
    put<uint32_t>(out_, 1);
  }
  put<uint32_t>(out_, kEndSig);
  put<uint16_t>(out_, 0);
  put<uint16_t>(out_, 0);
  put<uint16_t>(out_, zip64 ? 0xFFFF : static_cast<uint16_t>(count));
  put<uint16_t>(out_, zip64 ? 0xFFFF : static_cast<uint16_t>(count));
  put<uint32_t>(out_, zip64 ? k32Max : static_cast<uint32_t>(cd_size));
  put<uint32_t>(out_, zip64 ? k32Max : static_cast<uint32_t>(cd_offset));
  put<uint16_t>(out_, 0);
  return std::move(out_);
}

}  // namespace ganlite::io
