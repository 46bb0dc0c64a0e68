#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>

#include "ganlite/io/safetensors.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::io::parse_safetensors;
using ganlite::io::serialize_safetensors;
using ganlite::testing::TempDir;
using Tensors = std::vector<std::pair<std::string, torch::Tensor>>;

namespace {

// Builds a file from a header text and a data buffer, as a hand-written (possibly bad) file.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  return out + header + data;
}

std::string error_of(const std::string& bytes) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
  } catch (const ganlite::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// One tensor of every dtype, plus a 0-dim and an empty tensor.
Tensors all_dtypes() {
  torch::manual_seed(3);
  return {
      {"f64", torch::randn({2, 3}, torch::kDouble)},
      {"f32", torch::randn({4}, torch::kFloat)},
      {"f16", torch::randn({3, 1}).to(torch::kHalf)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::tensor({int64_t{-5}, int64_t{1} << 40, int64_t{7}}, torch::kLong)},
      {"i32", torch::tensor({-2147483647, 5}, torch::kInt)},
      {"i16", torch::tensor({-300, 300}, torch::kShort)},
      {"i8", torch::tensor({-128, 127}, torch::kChar)},
      {"u8", torch::tensor({0, 255, 9}, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::zeros({0, 3})},
  };
}

void expect_same(const Tensors& a, const Tensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.scalar_type(), b[i].second.scalar_type()) << a[i].first;
    EXPECT_EQ(a[i].second.sizes(), b[i].second.sizes()) << a[i].first;
    EXPECT_TRUE(torch::equal(a[i].second.cpu(), b[i].second)) << a[i].first;
  }
}

}  // namespace

TEST(Safetensors, RoundTripsEveryDtypeScalarAndEmptyTensors) {
  const Tensors tensors = all_dtypes();
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"note", "héllo \"quoted\"\n"}};
  const auto contents = parse_safetensors(serialize_safetensors(tensors, meta), "mem");
  expect_same(tensors, contents.tensors);
  EXPECT_EQ(contents.metadata, meta);
  EXPECT_EQ(contents.tensors[10].second.dim(), 0);
  EXPECT_EQ(contents.tensors[11].second.numel(), 0);
}

TEST(Safetensors, HeaderLayoutFollowsTheSpec) {
  const Tensors tensors{{"b", torch::ones({2, 2})}, {"a", torch::arange(3, torch::kLong)}};
  const std::string bytes = serialize_safetensors(tensors, {{"k", "v"}});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 16 + 24);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.front(), '{');
  const auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["__metadata__"]["k"], "v");
  EXPECT_EQ(j["b"]["dtype"], "F32");
  EXPECT_EQ(j["b"]["shape"], nlohmann::json({2, 2}));
  // Tensors lie contiguously in the order given, not sorted by name.
  EXPECT_EQ(j["b"]["data_offsets"], nlohmann::json({0, 16}));
  EXPECT_EQ(j["a"]["dtype"], "I64");
  EXPECT_EQ(j["a"]["data_offsets"], nlohmann::json({16, 40}));
  // Little-endian data: 1.0f is 00 00 80 3f; int64 2 is 02 00 .. 00.
  EXPECT_EQ(bytes.substr(8 + n, 4), std::string("\x00\x00\x80\x3f", 4));
  EXPECT_EQ(bytes.substr(8 + n + 16 + 16, 8), std::string("\x02\0\0\0\0\0\0\0", 8));
  // Padding is spaces.
  EXPECT_EQ(header.find_last_not_of(' ') + 1, header.find_last_of('}') + 1);
}

TEST(Safetensors, ExactBytesOfASmallFile) {
  const std::string bytes = serialize_safetensors({{"x", torch::tensor({1.0f, -2.0f})}});
  const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";  // 54 bytes -> pad to 56
  const std::string expected = raw_file(header + "  ", std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8));
  EXPECT_EQ(bytes, expected);
}

TEST(Safetensors, ReadsTheCommittedFixture) {
  // Written by tests/fixtures/io/make_fixture.py with json/struct only.
  const auto contents = ganlite::io::load_safetensors(fs::path(GANLITE_FIXTURES_DIR) / "io" / "small.safetensors");
  ASSERT_EQ(contents.tensors.size(), 3u);
  EXPECT_EQ(contents.metadata.at("format"), "pt");
  EXPECT_EQ(contents.tensors[0].first, "weight");
  EXPECT_TRUE(torch::equal(contents.tensors[0].second, torch::tensor({{1.0f, 2.0f}, {3.0f, -4.5f}})));
  EXPECT_EQ(contents.tensors[1].first, "steps");
  EXPECT_TRUE(torch::equal(contents.tensors[1].second, torch::tensor(int64_t{7})));
  EXPECT_EQ(contents.tensors[1].second.dim(), 0);
  EXPECT_EQ(contents.tensors[2].first, "half");
  EXPECT_TRUE(torch::equal(contents.tensors[2].second, torch::tensor({0.5f, -2.0f}).to(torch::kHalf)));
}

TEST(Safetensors, SavesNonContiguousAndDeviceTensorsAtomically) {
  TempDir dir;
  torch::Device device = torch::cuda::is_available() ? torch::Device("cuda:0") : torch::Device(torch::kCPU);
  const torch::Tensor base = torch::arange(12, torch::TensorOptions().dtype(torch::kFloat).device(device)).view({3, 4});
  const torch::Tensor transposed = base.t();
  ganlite::io::save_safetensors(dir / "m.safetensors", {{"t", transposed}, {"slice", base.select(1, 2)}});
  const auto contents = ganlite::io::load_safetensors(dir / "m.safetensors");
  EXPECT_TRUE(contents.tensors[0].second.device().is_cpu());
  EXPECT_TRUE(torch::equal(contents.tensors[0].second, transposed.cpu()));
  EXPECT_TRUE(torch::equal(contents.tensors[1].second, torch::tensor({2.0f, 6.0f, 10.0f})));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(Safetensors, RefusesToSaveWhatTheFormatCannotHold) {
  TempDir dir;
  auto save_error = [&](const Tensors& t) {
    try {
      ganlite::io::save_safetensors(dir / "x.safetensors", t);
    } catch (const ganlite::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const torch::Tensor one = torch::ones({1});
  EXPECT_TRUE(contains(save_error({{"a", one}, {"a", one}}), "duplicate tensor name 'a'"));
  EXPECT_TRUE(contains(save_error({{"__metadata__", one}}), "reserved"));
  EXPECT_TRUE(contains(save_error({{"c", torch::ones({2}, torch::kComplexFloat)}}), "tensor 'c'"));
  EXPECT_TRUE(contains(save_error({{"u", torch::Tensor()}}), "'u' is undefined"));
  EXPECT_TRUE(contains(save_error({{"a", one}, {"a", one}}), "x.safetensors"));
  // Nothing was written, not even a temporary.
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Safetensors, MalformedFilesGiveErrorsNamingTheProblem) {
  const std::string f32x2(8, '\0');
  EXPECT_TRUE(contains(error_of("abc"), "bad.safetensors"));
  EXPECT_TRUE(contains(error_of("abc"), "too short"));
  EXPECT_TRUE(contains(error_of(raw_file("{}", "").substr(0, 9)), "beyond the file size"));
  EXPECT_TRUE(contains(error_of(raw_file("{\"a\":", "")), "not valid JSON"));
  EXPECT_TRUE(contains(error_of(raw_file("[1,2]", "")), "must be a JSON object"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}})", f32x2)),
                       "unknown or unsupported dtype 'F17'"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2)),
                       "tensor 'a': shape [3] of F32 needs"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2)),
                       "non-negative"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "")),
                       "out of range"));
  EXPECT_TRUE(contains(
      error_of(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        f32x2)),
      "overlap"));
  EXPECT_TRUE(contains(
      error_of(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f32x2)), "hole"));
  EXPECT_TRUE(contains(
      error_of(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", f32x2)), "trailing"));
  EXPECT_TRUE(contains(
      error_of(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        f32x2)),
      "duplicate name 'a'"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"a":{"dtype":"F32","shape":[1]}})", "")), "missing field 'data_offsets'"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"__metadata__":{"k":1}})", "")), "'k' must be a string"));
  EXPECT_TRUE(contains(error_of(raw_file(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "\x07")),
                       "BOOL byte 7"));
  EXPECT_TRUE(contains(
      error_of(raw_file(R"({"a":{"dtype":"U8","shape":[0,4611686018427387904,4],"data_offsets":[0,0]}})", "")),
      "too large"));
  // A length field claiming 2^64-1 bytes must not wrap around.
  EXPECT_TRUE(contains(error_of(std::string(8, '\xff') + "{}"), "beyond the file size"));
  // The empty file list is valid.
  EXPECT_TRUE(parse_safetensors(raw_file("{}", ""), "ok").tensors.empty());
}

TEST(Safetensors, LoadingNamesTheFile) {
  TempDir dir;
  ganlite::write_file_atomic(dir / "trunc.safetensors", std::string("\x10\0\0\0", 4));
  try {
    ganlite::io::load_safetensors(dir / "trunc.safetensors");
    FAIL() << "no error";
  } catch (const ganlite::Error& e) {
    EXPECT_TRUE(contains(e.what(), "trunc.safetensors")) << e.what();
  }
  EXPECT_THROW(ganlite::io::load_safetensors(dir / "missing.safetensors"), ganlite::Error);
}

// Fuzz-style: every truncation and many byte mutations of a valid file either parse or throw
// ganlite::Error (nothing else, no crash).
TEST(Safetensors, TruncatedOrMutatedFilesOnlyThrowErrors) {
  const std::string valid = serialize_safetensors(
      {{"w", torch::randn({2, 3})}, {"n", torch::tensor(int64_t{4})}, {"b", torch::tensor({true, false})},
       {"e", torch::zeros({0})}, {"h", torch::randn({3}).to(torch::kBFloat16)}},
      {{"arch_config", "{\"arch\":\"resnet\"}"}});
  int errors = 0;
  int parsed = 0;
  auto attempt = [&](const std::string& bytes) {
    try {
      parse_safetensors(bytes, "fuzz");
      ++parsed;
    } catch (const ganlite::Error&) {
      ++errors;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-ganlite exception: " << e.what();
    }
  };
  for (size_t len = 0; len < valid.size(); ++len) attempt(valid.substr(0, len));
  EXPECT_EQ(errors, static_cast<int>(valid.size()));  // every truncation is detected

  std::mt19937 rng(42);
  const std::vector<char> interesting{'\0', '\xff', '"', '{', '}', '[', ']', ',', ':', '-', '9', '0', ' ', 'e', '.'};
  for (size_t pos = 0; pos < valid.size(); ++pos) {
    for (char c : interesting) {
      std::string m = valid;
      m[pos] = c;
      attempt(m);
    }
    std::string m = valid;
    m[pos] = static_cast<char>(rng() & 0xFF);
    attempt(m);
  }
  // Random multi-byte corruption, insertions and deletions inside the header.
  for (int i = 0; i < 2000; ++i) {
    std::string m = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const size_t pos = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[pos] = static_cast<char>(rng() & 0xFF); break;
        case 1: m.insert(pos, 1, interesting[rng() % interesting.size()]); break;
        default: m.erase(pos, 1); break;
      }
    }
    attempt(m);
  }
  EXPECT_GT(parsed, 0);  // mutations inside the data buffer still parse
  EXPECT_GT(errors, 1000);
}
