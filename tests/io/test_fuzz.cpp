// Fuzz test of every file reader (issue 13). Seeded mutations of small valid files (truncation,
// bit flips, lying lengths, shapes, dtypes and metadata, absurd nesting) must each be read or
// refused with a ganlite::Error that names the file: no other exception, no crash, no hang, and
// no allocation beyond a memory bound. Most cases run in-process, in one forked child per batch
// under RLIMIT_AS and an alarm; a few run the CLI under `ulimit -v` and `timeout`, checking exit
// code 1 or 2, a message without a LibTorch backtrace, and no output file left behind.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "ganlite/compress/distill_config.h"
#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/import_pth.h"
#include "ganlite/io/npz.h"
#include "ganlite/io/pth.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/io/zip.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/train_config.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::testing::TempDir;
using json = nlohmann::json;

namespace {

const fs::path kFixtures(GANLITE_FIXTURES_DIR);
constexpr uint64_t kSeed = 13;
// Address space a batch may add to what the process maps already. Inputs are a few KB and
// every reader bounds its allocations by the bytes it reads (DEFLATE: x1032), so 1 GiB is far
// above what any case needs and far below what absurd metadata would ask for.
constexpr uint64_t kMemoryBudget = uint64_t{1} << 30;
// A batch takes about a second; one still running after this hangs.
constexpr unsigned kBatchSeconds = 120;

enum class Expect { kEither, kAccept, kRefuse };

using Reader = std::function<void(const fs::path&)>;

// One input for one reader.
struct Case {
  Case(std::string file_, std::string bytes_, Reader read_, Expect expect_ = Expect::kEither,
       std::vector<std::string> must_mention_ = {})
      : file(std::move(file_)), bytes(std::move(bytes_)), read(std::move(read_)), expect(expect_),
        must_mention(std::move(must_mention_)) {}
  std::string file;   // file name, written into the batch's folder; every refusal must name it
  std::string bytes;  // its content
  Reader read;
  Expect expect;                          // kRefuse: absurd or lying content; kAccept: a valid file
  std::vector<std::string> must_mention;  // words the refusal must contain (the field)
};
constexpr Expect kRefuse = Expect::kRefuse;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }
using ganlite::testing::contains;

// What is wrong with a reader's handling of one case; "" when it is fine.
std::string check_case(const Case& c, const fs::path& dir) {
  const fs::path path = dir / c.file;
  ganlite::testing::write_text_file(path, c.bytes);
  try {
    c.read(path);
  } catch (const ganlite::Error& e) {
    const std::string message = e.what();
    if (c.expect == Expect::kAccept) return "a valid file refused: " + message;
    if (message.empty()) return "empty message";
    if (contains(message, "Exception raised from")) return "LibTorch backtrace in: " + first_line(message);
    if (!contains(message, c.file)) return "the message does not name the file: " + message;
    for (const auto& word : c.must_mention) {
      if (!contains(message, word)) return "the message lacks '" + word + "': " + message;
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("not a ganlite::Error (") + typeid(e).name() + "): " + first_line(e.what());
  } catch (...) {
    return "an exception of unknown type";
  }
  return c.expect == Expect::kRefuse ? "accepted" : "";
}

uint64_t mapped_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  }
  return 0;
}

// In the child: allocations beyond the budget fail (bad_alloc, or LibTorch's c10::Error, both
// reported as failures by check_case) instead of exhausting the machine.
void limit_memory() {
  rlimit limit{};
  getrlimit(RLIMIT_AS, &limit);
  const rlim_t wanted = mapped_bytes() + kMemoryBudget;
  if (limit.rlim_max == RLIM_INFINITY || wanted < limit.rlim_max) limit.rlim_cur = wanted;
  setrlimit(RLIMIT_AS, &limit);
}

void write_line(int fd, std::string line) {
  for (char& ch : line) ch = ch == '\n' ? ' ' : ch;
  line += '\n';
  for (size_t done = 0; done < line.size();) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string out;
  char buffer[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  return out;
}

[[noreturn]] void run_child(const std::vector<Case>& cases, const fs::path& dir, int fd) {
  torch::set_num_threads(1);  // no OpenMP team in a forked child
  // libpng and OpenCV complain on stderr about every corrupt image; the report goes through `fd`.
  const int null = ::open("/dev/null", O_WRONLY);
  if (null >= 0) ::dup2(null, STDERR_FILENO);
  limit_memory();
  alarm(kBatchSeconds);
  for (const auto& c : cases) {
    write_line(fd, "> " + c.file);
    const std::string problem = check_case(c, dir);
    if (!problem.empty()) write_line(fd, "! " + c.file + ": " + problem);
  }
  _exit(0);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + (sig == SIGALRM ? " (hung past the alarm)" : "");
  }
  return "ended oddly";
}

// Runs the cases in a forked child; a gtest failure per bad case and for a child that crashed
// or hung (naming the case it was on).
void run_batch(const std::string& batch, const std::vector<Case>& cases) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::cout.flush();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(fds[0]);
    run_child(cases, dir.path(), fds[1]);
  }
  ::close(fds[1]);
  const std::string report = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::istringstream lines(report);
  std::string line;
  std::string last_started;
  size_t started = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("> ", 0) == 0) {
      last_started = line.substr(2);
      ++started;
    } else {
      ADD_FAILURE() << batch << ": " << line.substr(2);
    }
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << batch << ": the reader process " << describe(status) << " on " << last_started;
  EXPECT_EQ(started, cases.size()) << batch;
  std::cout << batch << ": " << cases.size() << " cases\n";
}

// ---- Mutations ----

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng_() % n); }
  std::string truncated(const std::string& bytes) { return bytes.substr(0, below(bytes.size())); }
  // 1 to 4 bits flipped in [begin, end).
  std::string flipped(std::string bytes, size_t begin, size_t end) {
    const size_t flips = 1 + below(4);
    for (size_t i = 0; i < flips; ++i) bytes[begin + below(end - begin)] ^= static_cast<char>(1u << below(8));
    return bytes;
  }
  std::string flipped(const std::string& bytes) { return flipped(bytes, 0, bytes.size()); }

 private:
  std::mt19937_64 rng_;
};

void put_le(std::string& bytes, size_t pos, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) bytes[pos + static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
}
void put_be(std::string& bytes, size_t pos, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) {
    bytes[pos + static_cast<size_t>(i)] = static_cast<char>((value >> (8 * (width - 1 - i))) & 0xFF);
  }
}
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << "no '" << from << "' to replace";
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}
std::string deep_json_array(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }
// The test must not build deep JSON itself (nlohmann's dump recurses): a placeholder value is
// replaced in the text instead.
const char* const kDeepPlaceholder = "\"@deep@\"";
std::string with_deep_value(const std::string& text) {
  return text.find(kDeepPlaceholder) == std::string::npos ? text
                                                          : replaced(text, kDeepPlaceholder, deep_json_array(100000));
}

// A .npy file with its header edited and the header length updated, so the lie reaches the
// header parser.
std::string npy_edited(const std::string& npy, const std::string& from, const std::string& to) {
  const size_t length = static_cast<unsigned char>(npy[8]) | static_cast<size_t>(static_cast<unsigned char>(npy[9])) << 8;
  const std::string header = replaced(npy.substr(10, length), from, to);
  std::string out = npy.substr(0, 8) + std::string(2, '\0') + header + npy.substr(10 + length);
  put_le(out, 8, header.size(), 2);
  return out;
}

// Adds `count` truncations and `count` bit-flip mutations of `bytes` as cases named
// <stem>_t<i><ext> / <stem>_f<i><ext>.
void add_truncations_and_flips(std::vector<Case>& cases, Mutator& m, const std::string& bytes, const std::string& stem,
                               const std::string& ext, size_t count, const Reader& read) {
  for (size_t i = 0; i < count; ++i) {
    cases.push_back({stem + "_t" + std::to_string(i) + ext, m.truncated(bytes), read});
    cases.push_back({stem + "_f" + std::to_string(i) + ext, m.flipped(bytes), read});
  }
}

// ---- Model files (safetensors with arch_config metadata) ----

// A tiny resnet generator with its widths written out, so the metadata has every field.
ganlite::nn::ArchConfig tiny_resnet() {
  ganlite::nn::ArchConfig c;
  c.arch = "resnet";
  c.ngf = 2;
  c.n_blocks = 2;
  return c.with_resolved_widths();
}

std::string generator_file_bytes(const ganlite::nn::ArchConfig& config, const fs::path& dir) {
  torch::manual_seed(1);
  auto g = ganlite::nn::make_generator(config);
  ganlite::io::save_generator(dir / "g.safetensors", *g);
  return ganlite::read_file(dir / "g.safetensors");
}

// The same tensors with the arch_config metadata replaced.
std::string with_arch_config(const std::string& file_bytes, const std::string& arch_config) {
  auto contents = ganlite::io::parse_safetensors(file_bytes, "base");
  contents.metadata["arch_config"] = arch_config;
  return ganlite::io::serialize_safetensors(contents.tensors, contents.metadata);
}

// arch_config with one field set (a JSON pointer such as /widths/trunk) to `value` (JSON text).
std::string arch_with(const ganlite::nn::ArchConfig& config, const std::string& pointer, const std::string& value) {
  json j = config.to_json();
  j[json::json_pointer(pointer)] = json::parse(value);
  return j.dump();
}

// The header JSON of a safetensors file and its data, to rewrite shapes, dtypes and offsets.
std::pair<json, std::string> split_safetensors(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}
std::string join_safetensors(const json& header, const std::string& data) {
  const std::string text = header.dump();
  std::string out(8, '\0');
  put_le(out, 0, text.size(), 8);
  return out + text + data;
}

void read_generator(const fs::path& path) { ganlite::io::load_generator(path); }

std::vector<Case> arch_metadata_lies(const std::string& base) {
  const auto config = tiny_resnet();
  std::vector<Case> cases;
  size_t i = 0;
  auto lie = [&](const std::string& pointer, const std::string& value, const std::string& field) {
    cases.push_back({"arch" + std::to_string(i++) + ".safetensors", with_arch_config(base, arch_with(config, pointer, value)),
                     read_generator, kRefuse, {"arch_config", field}});
  };
  // Absurd sizes, numbers that do not fit an int, and values of the wrong type.
  for (const char* v : {"3000", "1e6", "1e8", "1099511627776", "-1", "0", "1.5", "\"64\"", "null", "18446744073709551615",
                        "-9223372036854775808", "1e300", "[64]"}) {
    lie("/ngf", v, "ngf");
  }
  for (const char* v : {"1e8", "65", "-1", "1099511627776", "2.5"}) lie("/n_blocks", v, "n_blocks");
  for (const char* v : {"1e6", "0", "4294967299"}) lie("/input_nc", v, "input_nc");
  lie("/output_nc", "100000", "output_nc");
  for (const char* v : {"1e6", "5000", "0", "-3"}) lie("/widths/trunk", v, "trunk");
  for (const char* v : {"1e6", "-1", "0.5"}) lie("/widths/blocks/0/0", v, "blocks");
  lie("/widths/stem", "1000000", "stem");
  lie("/dropout", "1.5", "dropout");
  lie("/dropout", "\"x\"", "dropout");
  lie("/arch", "\"bogus\"", "bogus");
  // A million blocks of one width each.
  std::string many = "[";
  for (int k = 0; k < 1000000; ++k) many += k ? ",[1]" : "[1]";
  lie("/widths/blocks", many + "]", "blocks");
  // Plausible networks that the file's few tensors cannot hold: refused before being built.
  json big = config.to_json();
  big.erase("widths");
  big["ngf"] = 64;
  big["n_blocks"] = 9;
  cases.push_back({"arch_plausible.safetensors", with_arch_config(base, big.dump()), read_generator, kRefuse,
                   {"does not match the weights"}});
  json unet{{"arch", "unet"}, {"ngf", 64}, {"num_downs", 13}};
  cases.push_back({"arch_unet.safetensors", with_arch_config(base, unet.dump()), read_generator, kRefuse, {"arch_config"}});
  unet["num_downs"] = 100000000;
  cases.push_back({"arch_unet_downs.safetensors", with_arch_config(base, unet.dump()), read_generator, kRefuse,
                   {"num_downs"}});
  // Nesting, non-objects and non-JSON.
  cases.push_back({"arch_deep.safetensors", with_arch_config(base, deep_json_array(100000)), read_generator, kRefuse,
                   {"nested"}});
  const std::string deep_ngf = with_deep_value(arch_with(config, "/ngf", kDeepPlaceholder));
  cases.push_back({"arch_deep_field.safetensors", with_arch_config(base, deep_ngf), read_generator, kRefuse, {"nested"}});
  cases.push_back({"arch_array.safetensors", with_arch_config(base, "[1, 2]"), read_generator, kRefuse, {"object"}});
  cases.push_back({"arch_text.safetensors", with_arch_config(base, "{ngf: 64"), read_generator, kRefuse, {"JSON"}});
  return cases;
}

// Shapes, dtypes and offsets in the header that disagree with the data or the network.
std::vector<Case> tensor_header_lies(const std::string& base) {
  const auto [header, data] = split_safetensors(base);
  std::vector<std::string> names;
  for (const auto& [name, info] : header.items()) {
    if (name != "__metadata__") names.push_back(name);
  }
  std::vector<Case> cases;
  size_t i = 0;
  auto lie = [&](const std::function<void(json&)>& edit) {
    json h = header;
    edit(h);
    cases.push_back({"tensors" + std::to_string(i++) + ".safetensors", join_safetensors(h, data), read_generator,
                     kRefuse});
  };
  const std::string w = names.front();
  lie([&](json& h) { h[w]["shape"] = {1 << 20, 1 << 20}; });
  lie([&](json& h) { h[w]["shape"] = {uint64_t{1} << 62, 4}; });
  lie([&](json& h) { h[w]["shape"] = {-1}; });
  lie([&](json& h) { h[w]["shape"] = {0, uint64_t{1} << 62, uint64_t{1} << 62}; });
  for (const char* dtype : {"F64", "F16", "I8", "BOOL", "U8", "C64", "F8_E4M3"}) {
    lie([&](json& h) { h[w]["dtype"] = dtype; });
  }
  lie([&](json& h) { h[w]["data_offsets"] = {0, uint64_t{1} << 40}; });
  lie([&](json& h) { h[w]["data_offsets"] = {uint64_t{1} << 63, 0}; });
  lie([&](json& h) { h[w]["data_offsets"] = json::array(); });
  // Two tensors' shapes swapped: the offsets still tile the data, the network refuses them.
  for (size_t k = 1; k < names.size(); ++k) {
    if (header[names[k]]["shape"] != header[w]["shape"] &&
        header[names[k]]["data_offsets"][1].get<int64_t>() - header[names[k]]["data_offsets"][0].get<int64_t>() ==
            header[w]["data_offsets"][1].get<int64_t>() - header[w]["data_offsets"][0].get<int64_t>()) {
      lie([&](json& h) { std::swap(h[w]["shape"], h[names[k]]["shape"]); });
      break;
    }
  }
  lie([&](json& h) { h.erase(w); });
  return cases;
}

std::vector<Case> model_file_cases(const fs::path& dir) {
  Mutator m(kSeed);
  const std::string base = generator_file_bytes(tiny_resnet(), dir);
  std::vector<Case> cases{{"good.safetensors", base, read_generator, Expect::kAccept}};
  add_truncations_and_flips(cases, m, base, "g", ".safetensors", 15, read_generator);
  const size_t header_end = 8 + (static_cast<unsigned char>(base[0]) | static_cast<unsigned char>(base[1]) << 8);
  for (size_t i = 0; i < 30; ++i) {
    cases.push_back({"gh_f" + std::to_string(i) + ".safetensors", m.flipped(base, 8, header_end), read_generator});
  }
  // Lying header lengths.
  for (uint64_t length : {uint64_t{0}, uint64_t{1}, uint64_t{header_end - 9}, uint64_t{header_end - 7},
                          uint64_t{base.size()}, uint64_t{100'000'001}, ~uint64_t{0}, uint64_t{1} << 63}) {
    std::string bytes = base;
    put_le(bytes, 0, length, 8);
    cases.push_back({"len" + std::to_string(length) + ".safetensors", bytes, read_generator, kRefuse});
  }
  for (auto& c : arch_metadata_lies(base)) cases.push_back(std::move(c));
  for (auto& c : tensor_header_lies(base)) cases.push_back(std::move(c));
  // Other architectures and a discriminator file.
  ganlite::nn::ArchConfig unet;
  unet.arch = "unet";
  unet.ngf = 1;
  unet.num_downs = 5;
  ganlite::nn::ArchConfig inception;
  inception.arch = "inception";
  inception.ngf = 3;
  inception.n_blocks = 2;
  inception.norm = "batch";
  add_truncations_and_flips(cases, m, generator_file_bytes(unet, dir), "unet", ".safetensors", 5, read_generator);
  add_truncations_and_flips(cases, m, generator_file_bytes(inception, dir), "incep", ".safetensors", 5,
                            read_generator);
  ganlite::nn::DiscriminatorConfig dc;
  dc.ndf = 2;
  dc.input_nc = 6;
  auto d = ganlite::nn::make_discriminator(dc);
  ganlite::io::save_module(dir / "d.safetensors", *d, {{"kind", "discriminator"}});
  auto read_d = [dc](const fs::path& path) {
    auto fresh = ganlite::nn::make_discriminator(dc);
    ganlite::io::load_module(path, *fresh);
  };
  add_truncations_and_flips(cases, m, ganlite::read_file(dir / "d.safetensors"), "d", ".safetensors", 10, read_d);
  return cases;
}

// ---- FID statistics (.npz) ----

void read_statistics(const fs::path& path) {
  ganlite::io::load_npz(path);
  ganlite::metrics::load_statistics(path);
}

// The entries of an archive with new content for some, rezipped with correct CRCs so that the
// lie reaches the .npy or pickle parser instead of the CRC check.
std::string rezipped(const std::string& archive, const std::map<std::string, std::string>& replacements) {
  const ganlite::io::ZipReader zip(archive, "base");
  ganlite::io::ZipWriter out;
  for (const auto& e : zip.entries()) {
    const auto it = replacements.find(e.name);
    out.add(e.name, it == replacements.end() ? zip.read(e) : it->second);
  }
  return out.finish();
}

std::vector<Case> npz_cases(const fs::path& dir) {
  Mutator m(kSeed + 1);
  ganlite::metrics::FeatureStats stats;
  stats.mu = torch::arange(6, torch::kFloat64);
  stats.sigma = torch::eye(6, torch::kFloat64);
  ganlite::metrics::save_statistics(dir / "s.npz", stats);
  const std::string base = ganlite::read_file(dir / "s.npz");
  const std::string compressed = ganlite::read_file(kFixtures / "metrics" / "numpy_compressed.npz");
  std::vector<Case> cases{{"good.npz", base, read_statistics, Expect::kAccept}};
  add_truncations_and_flips(cases, m, base, "s", ".npz", 10, read_statistics);
  add_truncations_and_flips(cases, m, compressed, "c", ".npz", 10,
                            [](const fs::path& p) { ganlite::io::load_npz(p); });
  // .npy headers that lie, rezipped with valid CRCs.
  const ganlite::io::ZipReader zip(base, "base");
  const std::string mu = zip.read("mu.npy");
  size_t i = 0;
  auto npy_lie = [&](const std::string& npy, std::vector<std::string> mention) {
    cases.push_back({"npy" + std::to_string(i++) + ".npz", rezipped(base, {{"mu.npy", npy}}), read_statistics,
                     kRefuse, std::move(mention)});
  };
  for (const char* shape : {"(1099511627776,)", "(6, 1099511627776)", "(0, 1000000000000000, 1000000000000000)",
                            "(99999999999999999999,)", "(-6,)", "6", "(6, 6)", "()"}) {
    npy_lie(npy_edited(mu, "(6,)", shape), {});
  }
  std::string many_dims = "(";
  for (int k = 0; k < 70; ++k) many_dims += "1, ";
  npy_lie(npy_edited(mu, "(6,)", many_dims + ")"), {"64"});
  for (const char* descr : {"<U8", "|O", "<c16", "<u8", "xyz"}) npy_lie(npy_edited(mu, "<f8", descr), {"dtype"});
  npy_lie(npy_edited(mu, "False", "Maybe"), {"fortran"});
  std::string long_header = mu;
  put_le(long_header, 8, 0xFFFF, 2);
  npy_lie(long_header, {});
  std::string version9 = mu;
  version9[6] = 9;
  npy_lie(version9, {"version"});
  std::string nan = mu;
  put_le(nan, nan.size() - 8, 0x7FF8000000000000ull, 8);  // the last mu is NaN
  npy_lie(nan, {"NaN"});
  // Zip records that lie: sizes, methods, offsets, overlapping entries.
  const ganlite::io::ZipEntry first = zip.entries().front();
  const size_t cd = base.rfind(std::string("PK\x01\x02", 4), base.size());  // the last central header
  for (const auto& [offset, value, width] : std::vector<std::tuple<size_t, uint64_t, int>>{
           {cd + 10, 8, 2}, {cd + 10, 99, 2}, {cd + 20, 0xFFFFFFF0, 4}, {cd + 24, 0xFFFFFFF0, 4},
           {cd + 42, first.local_header_offset, 4}, {cd + 42, 0xFFFFFFF0, 4}, {cd + 28, 0xFFFF, 2}}) {
    std::string bytes = base;
    put_le(bytes, offset, value, width);
    cases.push_back({"zip" + std::to_string(i++) + ".npz", bytes, read_statistics, kRefuse});
  }
  return cases;
}

// ---- PyTorch .pth (zip + pickle) ----

std::string pth_archive(const std::string& pickle, const std::string& storage = "") {
  ganlite::io::ZipWriter zip;
  zip.add("archive/data.pkl", pickle);
  if (!storage.empty()) zip.add("archive/data/0", storage);
  zip.add("archive/version", "3\n");
  return zip.finish();
}

std::string pickle_text(const std::string& s) {  // BINUNICODE
  std::string out = "X" + std::string(4, '\0');
  put_le(out, 1, s.size(), 4);
  return out + s;
}
std::string pickle_int(int32_t v) {  // BININT
  std::string out = "J" + std::string(4, '\0');
  put_le(out, 1, static_cast<uint32_t>(v), 4);
  return out;
}

// {"w": tensor of `size`/`stride` over a 4-float storage}, as torch.save writes it.
std::string tensor_pickle(const std::vector<int32_t>& size, const std::vector<int32_t>& stride) {
  std::string p = std::string("\x80\x02}(", 4) + pickle_text("w") + "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += "(" + pickle_text("storage") + "ctorch\nFloatStorage\n" + pickle_text("0") + pickle_text("cpu") + "K\x04tQ";
  p += std::string("K\x00", 2) + "(";
  for (auto s : size) p += pickle_int(s);
  p += "t(";
  for (auto s : stride) p += pickle_int(s);
  p += "t\x89tRu.";
  return p;
}

// A chain of `n` lists, each appended to the previous one before it gets its own child (so the
// depth recorded when it was added stays 1): only iterative destruction survives it.
std::string stale_depth_chain(int n) {
  std::string p("\x80\x02]r\x00\x00\x00\x00", 8);
  for (int k = 0; k < n; ++k) {
    std::string get = "j" + std::string(4, '\0');
    put_le(get, 1, static_cast<uint32_t>(k), 4);
    std::string put = "r" + std::string(4, '\0');
    put_le(put, 1, static_cast<uint32_t>(k + 1), 4);
    p += get + "]" + put + "a0";
  }
  return p + ".";
}

std::vector<Case> pth_cases() {
  Mutator m(kSeed + 2);
  auto read_pth = [](const fs::path& p) { ganlite::io::load_pth_state_dict(p); };
  auto import_resnet = [](const fs::path& p) {
    ganlite::io::ImportOptions options;
    options.arch = "resnet";
    ganlite::io::import_pth_generator(p, options);
  };
  const std::string small = ganlite::read_file(kFixtures / "metrics" / "torch113_state_dict.pth");
  const std::string resnet = ganlite::read_file(kFixtures / "interop" / "resnet_pix2pix_batch.pth");
  std::vector<Case> cases{{"good.pth", small, read_pth, Expect::kAccept},
                          {"good_resnet.pth", resnet, import_resnet, Expect::kAccept}};
  add_truncations_and_flips(cases, m, small, "p", ".pth", 10, read_pth);
  add_truncations_and_flips(cases, m, resnet, "r", ".pth", 4, import_resnet);
  // Mutated pickles and storages inside valid archives.
  const ganlite::io::ZipReader small_zip(small, "small");
  std::string pkl_name;
  for (const auto& e : small_zip.entries()) {
    if (contains(e.name, "data.pkl")) pkl_name = e.name;
  }
  const std::string pkl = small_zip.read(pkl_name);
  for (size_t i = 0; i < 25; ++i) {
    const std::string mutated = i % 3 == 0 ? m.truncated(pkl) : m.flipped(pkl);
    cases.push_back({"pkl" + std::to_string(i) + ".pth", rezipped(small, {{pkl_name, mutated}}), read_pth});
  }
  const ganlite::io::ZipReader resnet_zip(resnet, "resnet");
  for (size_t i = 0; i < 6; ++i) {
    const auto& e = resnet_zip.entries()[m.below(resnet_zip.entries().size())];
    const std::string content = resnet_zip.read(e);
    cases.push_back({"rz" + std::to_string(i) + ".pth",
                     rezipped(resnet, {{e.name, i % 2 ? m.truncated(content) : m.flipped(content)}}), import_resnet});
  }
  // Crafted pickles: nesting, cycles, lying lengths, views outside or beyond their storage.
  const std::string storage(16, '\0');
  auto crafted = [&](const std::string& name, const std::string& pickle, Expect expect,
                     std::vector<std::string> mention) {
    cases.push_back({name + ".pth", pth_archive(pickle, storage), read_pth, expect, std::move(mention)});
  };
  crafted("tensor_ok", tensor_pickle({2, 2}, {2, 1}), Expect::kAccept, {});
  crafted("stride0", tensor_pickle({1 << 20, 1 << 20}, {0, 0}), kRefuse, {"storage"});
  crafted("beyond_storage", tensor_pickle({5}, {1}), kRefuse, {"storage"});
  crafted("negative_size", tensor_pickle({-2}, {1}), kRefuse, {});
  crafted("deep_tuples", std::string("\x80\x02)", 3) + std::string(1000000, '\x85') + ".", kRefuse, {"nested"});
  crafted("deep_lists", std::string("\x80\x02", 2) + std::string(1000000, ']') + std::string(999999, 'a') + ".", kRefuse,
          {"nested"});
  crafted("deep_marks", std::string("\x80\x02", 2) + std::string(1000000, '(') + ")" + std::string(1000000, 't') + ".",
          kRefuse, {"nested"});
  crafted("stale_depth", stale_depth_chain(300000), kRefuse, {});
  crafted("self_dict", std::string("\x80\x02}q\x00", 5) + pickle_text("a") + std::string("h\x00s.", 4), kRefuse, {});
  crafted("self_list", std::string("\x80\x02]q\x00h\x00\x61.", 9), kRefuse, {});
  crafted("memo_missing", std::string("\x80\x02h\x07.", 5), kRefuse, {"memo"});
  crafted("unicode8", std::string("\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\x7f.", 12), kRefuse, {});
  crafted("long4", std::string("\x80\x02\x8b\xff\xff\xff\x7f.", 8), kRefuse, {});
  crafted("empty_stack", std::string("\x80\x02.", 3), kRefuse, {});
  crafted("values", std::string("\x80\x02", 2) + std::string(5000000, 'N') + ".", kRefuse, {"values"});
  return cases;
}

// ---- Images ----

std::vector<Case> image_cases(const fs::path& dir) {
  Mutator m(kSeed + 3);
  cv::Mat rgb(10, 12, CV_8UC3);
  for (int k = 0; k < 360; ++k) rgb.data[k] = static_cast<uchar>(k * 7);
  auto read_rgb = [](const fs::path& p) { ganlite::data::read_image_rgb(p); };
  auto read_gray = [](const fs::path& p) { ganlite::data::read_image_gray(p); };
  std::vector<Case> cases;
  std::map<std::string, std::string> images;
  for (const char* ext : {".png", ".jpg", ".bmp", ".webp"}) {
    ganlite::data::write_image_rgb(dir / (std::string("i") + ext), rgb);
    images[ext] = ganlite::read_file(dir / (std::string("i") + ext));
    cases.push_back({std::string("good") + ext, images[ext], read_rgb, Expect::kAccept});
    add_truncations_and_flips(cases, m, images[ext], std::string("i") + (ext + 1), ext, 8, read_rgb);
  }
  cv::Mat gray(9, 7, CV_8UC1, cv::Scalar(80));
  ganlite::data::write_image_gray(dir / "g.png", gray);
  add_truncations_and_flips(cases, m, ganlite::read_file(dir / "g.png"), "gray", ".png", 4, read_gray);
  // Headers declaring huge images (a few KB asking the decoder for gigabytes).
  auto huge = [&](const std::string& name, std::string bytes) {
    cases.push_back({name, std::move(bytes), read_rgb, kRefuse, {"pixels"}});
  };
  std::string png = images[".png"];
  put_be(png, 16, 60000, 4);
  put_be(png, 20, 60000, 4);
  put_be(png, 29, ganlite::io::zip_crc32(png.substr(12, 17)), 4);  // a valid IHDR CRC
  huge("huge.png", png);
  std::string jpg = images[".jpg"];
  const size_t sof = jpg.find("\xFF\xC0");
  if (sof != std::string::npos) {
    put_be(jpg, sof + 5, 60000, 2);
    put_be(jpg, sof + 7, 60000, 2);
    huge("huge.jpg", jpg);
  }
  std::string bmp = images[".bmp"];
  put_le(bmp, 18, 60000, 4);
  put_le(bmp, 22, 60000, 4);
  huge("huge.bmp", bmp);
  std::string webp = images[".webp"];
  if (webp.compare(12, 4, "VP8L") == 0) {
    uint32_t bits = 0;
    for (int k = 3; k >= 0; --k) bits = (bits << 8) | static_cast<unsigned char>(webp[21 + static_cast<size_t>(k)]);
    put_le(webp, 21, (bits & 0xF0000000u) | 0x0FFFFFFFu, 4);  // 16384 x 16384
    huge("huge.webp", webp);
  }
  std::string zero = images[".png"];
  put_be(zero, 16, 0, 4);
  put_be(zero, 29, ganlite::io::zip_crc32(zero.substr(12, 17)), 4);
  cases.push_back({"zero.png", zero, read_rgb, kRefuse, {}});
  return cases;
}

// ---- Run configs (config.json) ----

void read_config(const fs::path& path) { ganlite::compress::DistillRunConfig::load(path.string()); }

std::vector<Case> config_cases() {
  Mutator m(kSeed + 4);
  ganlite::train::TrainConfig base;
  base.dataroot = "data";
  base.generator = tiny_resnet();
  json j = base.to_json();
  j["distill"] = {{"methods", {"ka"}}, {"teacher", "t.safetensors"}, {"student", "s.safetensors"}};
  const std::string text = j.dump(2);
  std::vector<Case> cases{{"good.json", text, read_config, Expect::kAccept}};
  for (size_t i = 0; i < 15; ++i) {
    cases.push_back({"cfg_f" + std::to_string(i) + ".json", m.flipped(text), read_config});
    cases.push_back({"cfg_t" + std::to_string(i) + ".json", m.truncated(text), read_config});
  }
  size_t i = 0;
  auto lie = [&](const std::string& pointer, const std::string& value, const std::string& field) {
    json bad = j;
    bad[json::json_pointer(pointer)] = json::parse(value);
    cases.push_back({"lie" + std::to_string(i++) + ".json", with_deep_value(bad.dump()), read_config, kRefuse, {field}});
  };
  for (const char* field : {"batch_size", "load_size", "crop_size", "ndf", "n_layers_D", "pool_size", "n_epochs",
                            "threads", "workers"}) {
    for (const char* v : {"1099511627776", "-1", "1.5", "1e7", "\"8\"", "18446744073709551615"}) {
      lie(std::string("/") + field, v, field);
    }
  }
  lie("/load_size", "1e6", "load_size");
  lie("/seed", "-1", "seed");
  lie("/seed", "1.5", "seed");
  lie("/lr", "\"fast\"", "lr");
  lie("/beta1", "2", "beta1");
  lie("/max_iters", "-5", "max_iters");
  lie("/no_flip", "1", "no_flip");
  lie("/generator/ngf", "3000", "generator.ngf");
  lie("/generator/ngf", "1e6", "generator.ngf");
  lie("/generator/n_blocks", "1e8", "generator.n_blocks");
  lie("/generator/widths/trunk", "1000000", "generator.widths.trunk");
  lie("/generator/widths/blocks/0/0", "1000000", "generator.widths.blocks");
  lie("/distill/wkd_levels", "1000000", "distill.wkd_levels");
  lie("/distill/teacher_ndf", "1099511627776", "distill.teacher_ndf");
  lie("/distill/weights", "{\"ka\": -1}", "distill.weights");
  lie("/distill/methods", "[1]", "distill.methods");
  lie("/dataroot", kDeepPlaceholder, "nested");
  cases.push_back({"deep.json", deep_json_array(1000000), read_config, kRefuse, {"nested"}});
  cases.push_back({"array.json", "[1, 2]", read_config, kRefuse, {"object"}});
  return cases;
}

}  // namespace

TEST(Fuzz, ModelFilesAreReadOrRefusedWithinBounds) {
  TempDir dir;
  run_batch("model files", model_file_cases(dir.path()));
}

TEST(Fuzz, NpzStatisticsAreReadOrRefusedWithinBounds) {
  TempDir dir;
  run_batch("npz", npz_cases(dir.path()));
}

TEST(Fuzz, PthStateDictsAreReadOrRefusedWithinBounds) { run_batch("pth", pth_cases()); }

TEST(Fuzz, ImagesAreReadOrRefusedWithinBounds) {
  TempDir dir;
  run_batch("images", image_cases(dir.path()));
}

TEST(Fuzz, RunConfigsAreReadOrRefusedWithinBounds) { run_batch("config.json", config_cases()); }

// ---- The CLI on bad files: exit 1 or 2, a message, no backtrace, nothing written ----

namespace {

// What a command may map at most. LibTorch itself maps well under 1 GiB; absurd metadata would
// ask for terabytes.
constexpr const char* kCliMemoryKb = "4194304";

struct CliCase {
  CliCase(std::string args_, std::vector<std::string> mention_, fs::path must_not_exist_ = {})
      : args(std::move(args_)), mention(std::move(mention_)), must_not_exist(std::move(must_not_exist_)) {}
  std::string args;
  std::vector<std::string> mention;  // words the message must contain
  fs::path must_not_exist;           // the output the command would have written
};

void expect_refused_by_cli(const CliCase& c, const fs::path& dir) {
  const auto r = ganlite::testing::run_command("cd '" + dir.string() + "' && ulimit -v " + kCliMemoryKb +
                                               " && timeout 120 '" + GANLITE_CLI_PATH + "' " + c.args);
  SCOPED_TRACE("ganlite " + c.args + "\n" + r.output);
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << "exit code " << r.exit_code;
  EXPECT_TRUE(contains(r.output, "ganlite: error: ")) << "no error message";
  EXPECT_FALSE(contains(r.output, "Exception raised from") || contains(r.output, "frame #")) << "a backtrace";
  for (const auto& word : c.mention) EXPECT_TRUE(contains(r.output, word)) << "the message lacks " << word;
  if (!c.must_not_exist.empty()) {
    EXPECT_FALSE(fs::exists(dir / c.must_not_exist)) << c.must_not_exist;
  }
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    EXPECT_FALSE(contains(entry.path().filename().string(), ".tmp.")) << "temporary left: " << entry.path();
  }
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  ganlite::testing::write_text_file(path, bytes);
}

// The bad inputs of the CLI cases, written under `dir`.
void write_cli_inputs(const fs::path& dir) {
  const std::string g = generator_file_bytes(tiny_resnet(), dir);  // dir/g.safetensors
  const auto config = tiny_resnet();
  write_bytes(dir / "ngf.safetensors", with_arch_config(g, arch_with(config, "/ngf", "3000")));
  write_bytes(dir / "blocks.safetensors", with_arch_config(g, arch_with(config, "/n_blocks", "1e8")));
  write_bytes(dir / "trunk.safetensors", with_arch_config(g, arch_with(config, "/widths/trunk", "1e6")));
  write_bytes(dir / "deep.safetensors", with_arch_config(g, deep_json_array(1000000)));
  write_bytes(dir / "cut.safetensors", g.substr(0, g.size() / 2));
  std::string lying_length = g;
  put_le(lying_length, 0, ~uint64_t{0}, 8);
  write_bytes(dir / "length.safetensors", lying_length);

  cv::Mat rgb(16, 16, CV_8UC3, cv::Scalar(10, 200, 30));
  ganlite::data::write_image_rgb(dir / "in" / "a.png", rgb);
  const std::string png = ganlite::read_file(dir / "in" / "a.png");
  write_bytes(dir / "cut_in" / "a.png", png.substr(0, png.size() - 20));
  std::string huge = png;
  put_be(huge, 16, 60000, 4);
  put_be(huge, 20, 60000, 4);
  put_be(huge, 29, ganlite::io::zip_crc32(huge.substr(12, 17)), 4);
  write_bytes(dir / "huge_in" / "a.png", huge);

  write_bytes(dir / "deep.pth", pth_archive(std::string("\x80\x02)", 3) + std::string(1000000, '\x85') + "."));
  write_bytes(dir / "stride0.pth", pth_archive(tensor_pickle({1 << 20, 1 << 20}, {0, 0}), std::string(16, '\0')));
  const std::string resnet = ganlite::read_file(kFixtures / "interop" / "resnet_pix2pix_batch.pth");
  write_bytes(dir / "cut.pth", resnet.substr(0, resnet.size() * 2 / 3));

  ganlite::metrics::FeatureStats stats;
  stats.mu = torch::zeros({4}, torch::kFloat64);
  stats.sigma = torch::eye(4, torch::kFloat64);
  ganlite::metrics::save_statistics(dir / "s.npz", stats);
  const std::string npz = ganlite::read_file(dir / "s.npz");
  write_bytes(dir / "shape.npz", rezipped(npz, {{"mu.npy", replaced(ganlite::io::ZipReader(npz, "s").read("mu.npy"),
                                                                    "(4,)", "(1099511627776,)")}}));
  write_bytes(dir / "cut.npz", npz.substr(0, npz.size() - 30));
  stats.mu[2] = std::nan("");
  ganlite::metrics::save_statistics(dir / "nan.npz", stats);

  ganlite::train::TrainConfig train;
  train.dataroot = "data";
  json j = train.to_json();
  j["batch_size"] = uint64_t{1} << 40;
  write_bytes(dir / "batch.json", j.dump());
  j["batch_size"] = 1;
  j["generator"]["ngf"] = 1e6;
  write_bytes(dir / "ngf.json", j.dump());
  write_bytes(dir / "deep.json", deep_json_array(1000000));
}

}  // namespace

// ~20 runs of the executable (LibTorch's start-up makes each cost ~1.5 s).
TEST(FuzzCli, BadFilesEndInAnErrorMessageWithoutBacktraceOrOutput) {
  TempDir dir;
  write_cli_inputs(dir.path());
  const std::string fid = " --fake in --inception missing_inception.pth";
  const std::vector<CliCase> cases{
      {"profile --model ngf.safetensors", {"ngf.safetensors", "'ngf'", "1024"}},
      {"profile --model blocks.safetensors", {"n_blocks"}},
      {"profile --model cut.safetensors", {"cut.safetensors"}},
      {"profile --model deep.safetensors", {"nested"}},
      {"bench --model length.safetensors --runs 1 --warmup 0", {"length.safetensors"}},
      {"export --model ngf.safetensors --out g.onnx", {}, "g.onnx"},
      {"translate --model trunk.safetensors --input in --out out1", {"trunk"}, "out1/a.png"},
      {"translate --model g.safetensors --input cut_in --out out2", {"a.png"}, "out2/a.png"},
      {"translate --model g.safetensors --input huge_in --out out3", {"pixels"}, "out3/a.png"},
      {"import --checkpoint deep.pth --arch resnet --out o1.safetensors", {"deep.pth", "nested"}, "o1.safetensors"},
      {"import --checkpoint stride0.pth --arch resnet --out o2.safetensors", {"storage"}, "o2.safetensors"},
      {"import --checkpoint cut.pth --arch resnet --out o3.safetensors", {"cut.pth"}, "o3.safetensors"},
      {"fid --real shape.npz" + fid, {"shape.npz"}},
      {"fid --real cut.npz" + fid, {"cut.npz"}},
      {"fid --real nan.npz" + fid, {"nan.npz", "NaN"}},
      {"train --config batch.json --out run1", {"batch.json", "batch_size"}, "run1"},
      {"train --config ngf.json --out run2", {"generator.ngf"}, "run2"},
      {"train --config deep.json --out run3", {"nested"}, "run3"},
      {"train --arch-from trunk.safetensors --data data --out run4", {"trunk"}, "run4"},
  };
  for (const auto& c : cases) expect_refused_by_cli(c, dir.path());
}
