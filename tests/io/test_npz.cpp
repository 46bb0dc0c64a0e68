// zip reader/writer and .npy/.npz: round trips, numpy's own files (committed fixtures written by
// numpy 1.24: np.savez_compressed = DEFLATE, np.savez = STORED with forced ZIP64), malformed
// input, and numpy interop both ways when /usr/bin/python3 has numpy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/io/npz.h"
#include "ganlite/io/zip.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::Error;
using ganlite::testing::TempDir;

namespace {

const fs::path kNpzFixtures = fs::path(GANLITE_FIXTURES_DIR) / "metrics";

// Flips one byte of a copy.
std::string corrupt(std::string bytes, size_t at) {
  bytes[at] = static_cast<char>(bytes[at] ^ 0x5A);
  return bytes;
}

}  // namespace

TEST(Zip, StoredRoundTripKeepsOrderAndContent) {
  ganlite::io::ZipWriter w;
  w.add("a.txt", "hello");
  w.add("dir/b.bin", std::string("\0\1\2\3", 4));
  w.add("empty", "");
  const std::string bytes = w.finish();
  const ganlite::io::ZipReader r(bytes, "mem.zip");
  ASSERT_EQ(r.entries().size(), 3u);
  EXPECT_EQ(r.entries()[0].name, "a.txt");
  EXPECT_EQ(r.entries()[1].name, "dir/b.bin");
  EXPECT_EQ(r.read("a.txt"), "hello");
  EXPECT_EQ(r.read("dir/b.bin"), std::string("\0\1\2\3", 4));
  EXPECT_EQ(r.read("empty"), "");
  EXPECT_TRUE(r.contains("empty"));
  EXPECT_FALSE(r.contains("nope"));
}

TEST(Zip, MissingEntryNamesArchiveAndEntry) {
  ganlite::io::ZipWriter w;
  w.add("x", "1");
  const ganlite::io::ZipReader r(w.finish(), "archive.zip");
  try {
    r.read("missing.npy");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("archive.zip"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing.npy"), std::string::npos) << e.what();
  }
}

TEST(Zip, MalformedArchivesThrowInsteadOfCrashing) {
  ganlite::io::ZipWriter w;
  w.add("mu.npy", std::string(100, 'x'));
  w.add("sigma.npy", std::string(50, 'y'));
  const std::string good = w.finish();
  EXPECT_THROW(ganlite::io::ZipReader("", "empty.zip"), Error);
  EXPECT_THROW(ganlite::io::ZipReader("not a zip at all, just some text here", "text.zip"), Error);
  // Every truncation and every single-byte corruption must end in Error or a correct read.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW(ganlite::io::ZipReader(good.substr(0, n), "cut.zip").read("sigma.npy"), Error) << "cut at " << n;
  }
  for (size_t at = 0; at < good.size(); ++at) {
    try {
      const ganlite::io::ZipReader r(corrupt(good, at), "flip.zip");
      for (const auto& e : r.entries()) r.read(e);
    } catch (const Error&) {
      // expected for most positions
    }
  }
}

TEST(Zip, CrcMismatchIsReported) {
  ganlite::io::ZipWriter w;
  w.add("data", "0123456789");
  std::string bytes = w.finish();
  const size_t at = bytes.find("0123456789");
  bytes[at] = 'X';
  const ganlite::io::ZipReader r(bytes, "crc.zip");
  try {
    r.read("data");
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CRC"), std::string::npos) << e.what();
  }
}

TEST(Npy, RoundTripOfEveryDtype) {
  for (auto dtype : {torch::kFloat64, torch::kFloat32, torch::kFloat16, torch::kInt64, torch::kInt32, torch::kInt16,
                     torch::kInt8, torch::kUInt8, torch::kBool}) {
    auto t = (torch::arange(24) % 7).reshape({2, 3, 4}).to(dtype);
    auto back = ganlite::io::parse_npy(ganlite::io::serialize_npy(t), "mem.npy");
    EXPECT_EQ(back.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(back, t)) << c10::toString(dtype);
  }
  // Scalars, 1-d, empty and non-contiguous tensors.
  auto scalar = torch::tensor(3.5, torch::kFloat64);
  EXPECT_TRUE(torch::equal(ganlite::io::parse_npy(ganlite::io::serialize_npy(scalar), "s"), scalar));
  auto vec = torch::arange(5, torch::kFloat32);
  EXPECT_TRUE(torch::equal(ganlite::io::parse_npy(ganlite::io::serialize_npy(vec), "v"), vec));
  auto empty = torch::zeros({0, 3});
  EXPECT_EQ(ganlite::io::parse_npy(ganlite::io::serialize_npy(empty), "e").sizes(), empty.sizes());
  auto transposed = torch::arange(6, torch::kFloat64).reshape({2, 3}).t();
  EXPECT_TRUE(torch::equal(ganlite::io::parse_npy(ganlite::io::serialize_npy(transposed), "t"), transposed));
}

TEST(Npy, HeaderIsPaddedTo64BytesLikeNumpy) {
  const std::string bytes = ganlite::io::serialize_npy(torch::zeros({2, 2}, torch::kFloat64));
  const size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_NE(bytes.find("'descr': '<f8'"), std::string::npos);
  EXPECT_NE(bytes.find("'shape': (2, 2)"), std::string::npos);
}

TEST(Npy, ReadsVersion2And3Headers) {
  const std::string header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }\n";
  for (char version : {'\x02', '\x03'}) {
    std::string bytes("\x93NUMPY", 6);
    bytes += version;
    bytes += '\0';
    const auto len = static_cast<uint32_t>(header.size());
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>((len >> (8 * i)) & 0xFF);
    bytes += header;
    const int32_t values[3] = {7, -1, 42};
    bytes.append(reinterpret_cast<const char*>(values), sizeof values);
    auto t = ganlite::io::parse_npy(bytes, "v2.npy");
    EXPECT_TRUE(torch::equal(t, torch::tensor({7, -1, 42}, torch::kInt32)));
  }
}

TEST(Npy, RejectsBadInputWithTheSourceName) {
  const std::string good = ganlite::io::serialize_npy(torch::ones({4}));
  auto expect_error = [](const std::string& bytes, const std::string& fragment) {
    try {
      ganlite::io::parse_npy(bytes, "bad.npy");
      ADD_FAILURE() << "expected Error containing " << fragment;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("bad.npy"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error("garbage", "not a .npy");
  expect_error(good.substr(0, good.size() - 1), "truncated");
  expect_error(good.substr(0, 20), "truncated");
  std::string unsigned16 = good;
  unsigned16.replace(unsigned16.find("<f4"), 3, "<u2");
  expect_error(unsigned16, "<u2");
  std::string version9 = good;
  version9[6] = 9;
  expect_error(version9, "version 9");
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW(ganlite::io::parse_npy(good.substr(0, n), "cut.npy"), Error) << n;
  }
}

TEST(Npz, ReadsNumpyCompressedFixture) {
  const auto arrays = ganlite::io::load_npz(kNpzFixtures / "numpy_compressed.npz");
  ASSERT_EQ(arrays.size(), 7u);
  EXPECT_TRUE(torch::equal(arrays.at("mu"), torch::arange(3, torch::kFloat64) * 0.5));
  EXPECT_TRUE(torch::equal(arrays.at("sigma"), torch::arange(9, torch::kFloat64).reshape({3, 3}) / 4));
  EXPECT_TRUE(torch::equal(arrays.at("ints"), torch::arange(6, torch::kInt64).reshape({2, 3}) - 3));
  EXPECT_TRUE(torch::equal(arrays.at("f32"), torch::arange(8, torch::kFloat32).reshape({2, 2, 2}) / 8));
  // Fortran order and big-endian arrays come back as C-contiguous native values.
  EXPECT_TRUE(torch::equal(arrays.at("fort"), torch::arange(6, torch::kInt32).reshape({2, 3})));
  EXPECT_TRUE(torch::equal(arrays.at("be"), torch::arange(4, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(arrays.at("mask"), torch::tensor({true, false, true})));
}

TEST(Npz, ReadsNumpyStoredZip64Fixture) {
  const auto arrays = ganlite::io::load_npz(kNpzFixtures / "numpy_stored.npz");
  ASSERT_EQ(arrays.size(), 2u);
  EXPECT_TRUE(torch::equal(arrays.at("mu"), torch::arange(3, torch::kFloat64) * 0.5));
}

TEST(Npz, SaveLoadRoundTripAndAtomicity) {
  TempDir dir;
  const auto path = dir / "stats.npz";
  std::map<std::string, torch::Tensor> arrays{{"mu", torch::randn({5}, torch::kFloat64)},
                                              {"sigma", torch::randn({5, 5}, torch::kFloat64)}};
  ganlite::io::save_npz(path, arrays);
  const auto back = ganlite::io::load_npz(path);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(torch::equal(back.at("mu"), arrays["mu"]));
  EXPECT_TRUE(torch::equal(back.at("sigma"), arrays["sigma"]));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1u) << "a temporary file was left behind";
}

TEST(Npz, MissingFileIsErrorNamingIt) {
  try {
    ganlite::io::load_npz("/nonexistent/real_stat.npz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/real_stat.npz"), std::string::npos) << e.what();
  }
}

TEST(Npz, NumpyReadsOursAndWeReadNumpys) {
  if (!ganlite::testing::python_has_module("numpy")) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  TempDir dir;
  ganlite::io::save_npz(dir / "ours.npz", {{"mu", torch::arange(4, torch::kFloat64) / 3},
                                           {"sigma", torch::eye(4, torch::kFloat64) * 2},
                                           {"ids", torch::arange(3, torch::kInt64)}});
  const std::string script =
      "import numpy as np, sys\n"
      "d = np.load(sys.argv[1] + '/ours.npz')\n"
      "assert d['mu'].dtype == np.float64 and np.array_equal(d['mu'], np.arange(4) / 3), d['mu']\n"
      "assert np.array_equal(d['sigma'], np.eye(4) * 2)\n"
      "assert d['ids'].dtype == np.int64 and list(d['ids']) == [0, 1, 2]\n"
      "r = np.random.RandomState(1)\n"
      "np.savez_compressed(sys.argv[1] + '/theirs.npz', a=r.rand(7, 3).astype(np.float32), b=np.arange(5) * 2)\n"
      "np.save(sys.argv[1] + '/single.npy', np.full((2, 2), 1.25))\n"
      "print('OK')\n";
  ganlite::testing::write_text_file(dir / "check.py", script);
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " " + (dir / "check.py").string() +
                                               " " + dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto theirs = ganlite::io::load_npz(dir / "theirs.npz");
  EXPECT_EQ(theirs.at("a").sizes(), (std::vector<int64_t>{7, 3}));
  EXPECT_EQ(theirs.at("a").scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(theirs.at("b"), torch::arange(5, torch::kInt64) * 2));
  EXPECT_TRUE(torch::equal(ganlite::io::load_npy(dir / "single.npy"), torch::full({2, 2}, 1.25, torch::kFloat64)));
}

TEST(Zip, Zip64EndRecordWithManyEntries) {
  // More than 65535 entries needs the ZIP64 end-of-central-directory record and locator.
  ganlite::io::ZipWriter w;
  const int count = 70000;
  for (int i = 0; i < count; ++i) w.add("e" + std::to_string(i), std::to_string(i * 7));
  const std::string bytes = w.finish();
  const ganlite::io::ZipReader r(bytes, "many.zip");
  ASSERT_EQ(r.entries().size(), static_cast<size_t>(count));
  EXPECT_EQ(r.read(r.entries()[69999]), std::to_string(69999 * 7));
  EXPECT_EQ(r.read("e12345"), std::to_string(12345 * 7));
  if (ganlite::testing::system_python().empty()) GTEST_SKIP() << "no /usr/bin/python3 to cross-check with zipfile";
  TempDir dir;
  ganlite::testing::write_text_file(dir / "many.zip", bytes);
  const auto check = ganlite::testing::run_command(
      ganlite::testing::system_python() + " -c \"import zipfile,sys; z = zipfile.ZipFile(sys.argv[1]); "
      "n = z.namelist(); assert len(n) == 70000, len(n); assert z.read('e69999') == b'489993'; "
      "assert z.testzip() is None; print('OK')\" " + (dir / "many.zip").string());
  EXPECT_EQ(check.exit_code, 0) << check.output;
}
