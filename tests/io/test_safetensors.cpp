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

using ganlite::testing::contains;

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

TEST(Safetensors, HeaderOnlyReadMatchesTheFullRead) {
  TempDir dir;
  const Tensors tensors = all_dtypes();
  ganlite::io::save_safetensors(dir / "a.safetensors", tensors, {{"kind", "generator"}});
  const auto header = ganlite::io::read_safetensors_header(dir / "a.safetensors");
  EXPECT_EQ(header.metadata.at("kind"), "generator");
  ASSERT_EQ(header.tensors.size(), tensors.size());
  int64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(header.tensors[i].name, tensors[i].first);
    EXPECT_EQ(header.tensors[i].shape, tensors[i].second.sizes().vec());
    EXPECT_EQ(header.tensors[i].begin, offset);
    offset += tensors[i].second.numel() * static_cast<int64_t>(tensors[i].second.element_size());
    EXPECT_EQ(header.tensors[i].end, offset);
  }
  EXPECT_EQ(header.tensors[0].dtype, "F64");
  EXPECT_EQ(header.tensors[3].dtype, "BF16");
  EXPECT_EQ(header.tensors[9].dtype, "BOOL");

  // A file cut inside its data is caught from the file size alone.
  const std::string bytes = ganlite::read_file(dir / "a.safetensors");
  ganlite::write_file_atomic(dir / "cut.safetensors", bytes.substr(0, bytes.size() - 3));
  try {
    ganlite::io::read_safetensors_header(dir / "cut.safetensors");
    FAIL() << "no error";
  } catch (const ganlite::Error& e) {
    EXPECT_TRUE(contains(e.what(), "cut.safetensors")) << e.what();
    EXPECT_TRUE(contains(e.what(), "out of range")) << e.what();
  }
  ganlite::write_file_atomic(dir / "tiny.safetensors", std::string("abc"));
  EXPECT_THROW(ganlite::io::read_safetensors_header(dir / "tiny.safetensors"), ganlite::Error);
  EXPECT_THROW(ganlite::io::read_safetensors_header(dir / "none.safetensors"), ganlite::Error);
  EXPECT_THROW(ganlite::io::read_safetensors_header(dir.path()), ganlite::Error);

  // A header claiming 200 MB (in a sparse file that large) is refused before it is read.
  const uint64_t huge = 200'000'000;
  std::string length;
  for (int i = 0; i < 8; ++i) length.push_back(static_cast<char>((huge >> (8 * i)) & 0xFF));
  ganlite::write_file_atomic(dir / "huge.safetensors", length);
  fs::resize_file(dir / "huge.safetensors", 8 + huge);
  try {
    ganlite::io::read_safetensors_header(dir / "huge.safetensors");
    FAIL() << "no error";
  } catch (const ganlite::Error& e) {
    EXPECT_TRUE(contains(e.what(), "100 MB")) << e.what();
  }
}

TEST(Safetensors, DeeplyNestedHeaderIsAnErrorNotAStackOverflow) {
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_TRUE(contains(error_of(raw_file(deep, "")), "must be a JSON object"));
  const std::string deep_meta = "{\"__metadata__\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  EXPECT_TRUE(contains(error_of(raw_file(deep_meta, "")), "__metadata__ must be an object"));
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

namespace {

// An independent reader and writer of the format using only json, struct and numpy (not the
// safetensors package), so a misreading of the spec cannot hide in a shared implementation.
const char* kPythonScript = R"PY(
import json, struct, sys
import numpy as np

NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
      "I8": "i1", "U8": "u1", "BOOL": "?"}

def bf16_to_f32(raw):
    return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)

def f32_to_bf16_bytes(values):
    return (np.asarray(values, "<f4").view(np.uint32) >> 16).astype("<u2").tobytes()

def read(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, "header length %d not a multiple of 8" % n
    text = data[8:8 + n]
    assert text.startswith(b"{") and text.rstrip(b" ").endswith(b"}"), "header not padded with spaces"
    header = json.loads(text.decode("utf-8"))
    meta = header.pop("__metadata__", {})
    buf = data[8 + n:]
    pos = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        assert b == pos, "%s starts at %d, expected %d" % (name, b, pos)
        pos = e
    assert pos == len(buf), "buffer %d bytes, tensors cover %d" % (len(buf), pos)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        raw = buf[b:e]
        a = bf16_to_f32(raw) if info["dtype"] == "BF16" else np.frombuffer(raw, NP[info["dtype"]])
        out[name] = (info["dtype"], a.reshape(info["shape"]))
    return meta, out, [k for k, _ in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"])]

def check_ganlite_file(path):
    meta, tensors, order = read(path)
    assert meta == {"who": "ganlite", "text": "\u00fc"}, meta
    expected = {
        "f64": ("F64", np.arange(6, dtype=np.float64).reshape(2, 3) * 0.5 - 1),
        "f32": ("F32", (np.arange(6, dtype=np.float32) * 0.25).reshape(3, 2)),
        "f16": ("F16", np.arange(4, dtype=np.float16) * np.float16(0.25)),
        "bf16": ("BF16", np.arange(4, dtype=np.float32) - 2),
        "i64": ("I64", np.array([-5, 2**40, 7], dtype=np.int64)),
        "i32": ("I32", np.array([-7, 8], dtype=np.int32)),
        "i16": ("I16", np.array([-300, 300], dtype=np.int16)),
        "i8": ("I8", np.array([-128, 127], dtype=np.int8)),
        "u8": ("U8", np.array([0, 255], dtype=np.uint8)),
        "bool": ("BOOL", np.array([True, False, True])),
        "scalar": ("F32", np.array(2.5, dtype=np.float32)),
        "empty": ("F32", np.zeros((0, 3), dtype=np.float32)),
    }
    assert order == list(expected), order
    for name, (dtype, want) in expected.items():
        got_dtype, got = tensors[name]
        assert got_dtype == dtype, (name, got_dtype)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        assert np.array_equal(got, want), (name, got, want)
    try:
        from safetensors import safe_open
    except ImportError:
        print("safetensors package: not installed")
    else:
        with safe_open(path, "np") as f:
            assert sorted(f.keys()) == sorted(expected)
            for name, (dtype, want) in expected.items():
                if dtype != "BF16":
                    assert np.array_equal(f.get_tensor(name), want), name
        print("safetensors package: agrees")

def write_python_file(path):
    # Data laid out a..g, header listed in another order, Python's default JSON spacing.
    tensors = [
        ("a", "F32", [2, 3], (np.arange(6, dtype="<f4") * 1.5).tobytes()),
        ("b", "I64", [2], np.array([-1, 2**40], "<i8").tobytes()),
        ("c", "F16", [2], np.array([0.5, -2.0], "<f2").tobytes()),
        ("d", "BOOL", [2], np.array([True, False]).tobytes()),
        ("e", "U8", [], np.array(200, "u1").tobytes()),
        ("f", "F64", [0, 2], b""),
        ("g", "BF16", [2], f32_to_bf16_bytes([1.0, -3.0])),
    ]
    entries, pos = [], 0
    for name, dtype, shape, raw in tensors:
        entries.append((name, {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + len(raw)]}))
        pos += len(raw)
    header = dict(reversed(entries))
    header["__metadata__"] = {"format": "np", "by": "python"}
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))

if sys.argv[1] == "check":
    check_ganlite_file(sys.argv[2])
else:
    write_python_file(sys.argv[2])
print("OK")
)PY";

}  // namespace

TEST(SafetensorsInterop, IndependentPythonReaderAndWriterAgree) {
  if (!ganlite::testing::python_has_module("numpy")) {
    GTEST_SKIP() << "needs /usr/bin/python3 with numpy (apt install python3-numpy)";
  }
  TempDir dir;
  const std::string py = ganlite::testing::system_python();
  ganlite::testing::write_text_file(dir / "st.py", kPythonScript);
  const std::string script = "'" + py + "' '" + (dir / "st.py").string() + "' ";

  const Tensors ours{
      {"f64", torch::arange(6, torch::kDouble).view({2, 3}) * 0.5 - 1},
      {"f32", (torch::arange(6, torch::kFloat) * 0.25).view({3, 2})},
      {"f16", (torch::arange(4, torch::kFloat) * 0.25).to(torch::kHalf)},
      {"bf16", (torch::arange(4, torch::kFloat) - 2).to(torch::kBFloat16)},
      {"i64", torch::tensor({int64_t{-5}, int64_t{1} << 40, int64_t{7}}, torch::kLong)},
      {"i32", torch::tensor({-7, 8}, torch::kInt)},
      {"i16", torch::tensor({-300, 300}, torch::kShort)},
      {"i8", torch::tensor({-128, 127}, torch::kChar)},
      {"u8", torch::tensor({0, 255}, torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5f)},
      {"empty", torch::zeros({0, 3})},
  };
  ganlite::io::save_safetensors(dir / "ours.safetensors", ours, {{"who", "ganlite"}, {"text", "\xc3\xbc"}});
  auto r = ganlite::testing::run_command(script + "check '" + (dir / "ours.safetensors").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "OK")) << r.output;

  r = ganlite::testing::run_command(script + "write '" + (dir / "theirs.safetensors").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto theirs = ganlite::io::load_safetensors(dir / "theirs.safetensors");
  const std::map<std::string, std::string> meta{{"format", "np"}, {"by", "python"}};
  EXPECT_EQ(theirs.metadata, meta);
  const Tensors expected{
      {"a", torch::arange(6, torch::kFloat).view({2, 3}) * 1.5},
      {"b", torch::tensor({int64_t{-1}, int64_t{1} << 40}, torch::kLong)},
      {"c", torch::tensor({0.5f, -2.0f}).to(torch::kHalf)},
      {"d", torch::tensor({true, false})},
      {"e", torch::tensor(200, torch::kByte).view({})},
      {"f", torch::zeros({0, 2}, torch::kDouble)},
      {"g", torch::tensor({1.0f, -3.0f}).to(torch::kBFloat16)},
  };
  expect_same(expected, theirs.tensors);  // returned in data (file) order, not header order
}
