#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::io::NamedTensors;
using ganlite::testing::TempDir;

namespace {

// Own parameter and buffer, a Sequential with conv / BatchNorm / ReLU / affine InstanceNorm, and
// a plain child: covers PyTorch's "own params, own buffers, then children" order.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    scale = register_parameter("scale", torch::ones({1}));
    step = register_buffer("step", torch::zeros({}, torch::kLong));
    body = register_module(
        "body", torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3).bias(false)),
                                      torch::nn::BatchNorm2d(3), torch::nn::ReLU(),
                                      torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(3).affine(true))));
    head = register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 1, 1)));
  }
  torch::Tensor forward(torch::Tensor x) { return head->forward(body->forward(x)) * scale; }
  torch::Tensor scale, step;
  torch::nn::Sequential body{nullptr};
  torch::nn::Conv2d head{nullptr};
};
TORCH_MODULE(Net);

const std::vector<std::string> kNetKeys{
    "scale",        "step",           "body.0.weight",      "body.1.weight",
    "body.1.bias",  "body.1.running_mean", "body.1.running_var", "body.1.num_batches_tracked",
    "body.3.weight", "body.3.bias",   "head.weight",        "head.bias"};

std::vector<std::string> keys_of(const NamedTensors& t) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : t) keys.push_back(k);
  return keys;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ganlite::Error& e) {
    return e.what();
  }
  return "";
}

using ganlite::testing::contains;

torch::Device test_device() {
  return torch::cuda::is_available() ? torch::Device("cuda:0") : torch::Device(torch::kCPU);
}

// A state dict for Net with values unlike a fresh Net's.
NamedTensors shifted_state(Net& net) {
  NamedTensors out;
  for (const auto& [k, v] : ganlite::io::state_dict(*net)) out.emplace_back(k, v.detach().clone() + 3);
  return out;
}

}  // namespace

TEST(StateDict, UsesPyTorchNamesAndOrder) {
  Net net;
  const NamedTensors sd = ganlite::io::state_dict(*net);
  EXPECT_EQ(keys_of(sd), kNetKeys);
  // BatchNorm's counter is a 0-dim int64 like PyTorch's, and stored as I64.
  const torch::Tensor& counter = sd[7].second;
  EXPECT_EQ(counter.scalar_type(), torch::kLong);
  EXPECT_EQ(counter.dim(), 0);
  const std::string header = ganlite::io::serialize_safetensors(sd).substr(8);
  EXPECT_TRUE(contains(header, R"("body.1.num_batches_tracked":{"dtype":"I64","shape":[])")) << header;
  // The entries share storage with the module (a view, not a copy).
  EXPECT_EQ(sd[0].second.data_ptr(), net->scale.data_ptr());
}

TEST(StateDict, LoadCopiesValuesWithoutRecordingGradients) {
  Net src, dst;
  NamedTensors sd = shifted_state(src);
  ganlite::io::load_state_dict(*dst, sd);
  const NamedTensors loaded = ganlite::io::state_dict(*dst);
  for (size_t i = 0; i < sd.size(); ++i) EXPECT_TRUE(torch::equal(loaded[i].second, sd[i].second)) << sd[i].first;
  EXPECT_TRUE(dst->scale.requires_grad());
  EXPECT_TRUE(dst->scale.is_leaf());
  EXPECT_FALSE(dst->scale.grad_fn());
  // Changing the source afterwards does not reach the module: the data was copied.
  sd[0].second.fill_(-1);
  EXPECT_FLOAT_EQ(dst->scale.item<float>(), 4.0f);
}

TEST(StateDict, ConvertsDtypesToTheParameters) {
  Net net;
  NamedTensors sd;
  for (const auto& [k, v] : ganlite::io::state_dict(*net)) sd.emplace_back(k, torch::full_like(v, 2, torch::kDouble));
  ganlite::io::load_state_dict(*net, sd);
  EXPECT_EQ(net->head->weight.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(net->head->weight, torch::full({1, 3, 1, 1}, 2.0f)));
  EXPECT_EQ(net->step.scalar_type(), torch::kLong);
  EXPECT_EQ(net->step.item<int64_t>(), 2);
}

TEST(StateDict, StrictLoadNamesMissingUnexpectedAndMismatchedKeys) {
  Net net;
  NamedTensors sd = ganlite::io::state_dict(*net);

  NamedTensors missing(sd.begin() + 1, sd.end());
  EXPECT_TRUE(contains(error_of([&] { ganlite::io::load_state_dict(*net, missing); }), "missing key 'scale'"));

  NamedTensors extra = sd;
  extra.emplace_back("body.9.weight", torch::ones({1}));
  EXPECT_TRUE(contains(error_of([&] { ganlite::io::load_state_dict(*net, extra); }), "unexpected key 'body.9.weight'"));

  NamedTensors wrong = sd;
  wrong[10].second = torch::ones({1, 4, 1, 1});
  const std::string msg = error_of([&] { ganlite::io::load_state_dict(*net, wrong); });
  EXPECT_TRUE(contains(msg, "'head.weight'")) << msg;
  EXPECT_TRUE(contains(msg, "[1, 4, 1, 1]")) << msg;
  EXPECT_TRUE(contains(msg, "[1, 3, 1, 1]")) << msg;
  // Shape mismatches are errors even when not strict, as in PyTorch.
  EXPECT_THROW(ganlite::io::load_state_dict(*net, wrong, /*strict=*/false), ganlite::Error);

  NamedTensors twice = sd;
  twice.push_back(sd[0]);
  EXPECT_TRUE(contains(error_of([&] { ganlite::io::load_state_dict(*net, twice); }), "'scale' twice"));
}

TEST(StateDict, NonStrictLoadSkipsMissingAndUnexpected) {
  Net src, dst;
  const NamedTensors full = shifted_state(src);
  NamedTensors partial{full[0], {"not.a.key", torch::ones({5})}};
  const torch::Tensor head_before = dst->head->weight.detach().clone();
  ganlite::io::load_state_dict(*dst, partial, /*strict=*/false);
  EXPECT_TRUE(torch::equal(dst->scale, full[0].second));
  EXPECT_TRUE(torch::equal(dst->head->weight, head_before));
}

TEST(StateDict, OldCheckpointsWithoutBatchNormCounterLoadStrictly) {
  Net src, dst;
  NamedTensors sd;
  for (auto& kv : shifted_state(src)) {
    if (kv.first != "body.1.num_batches_tracked") sd.push_back(kv);
  }
  ganlite::io::load_state_dict(*dst, sd);
  EXPECT_TRUE(torch::equal(dst->head->bias, sd.back().second));
}

TEST(Checkpoint, ModuleRoundTripKeepsMetadataAndLoadsOntoTheDevice) {
  TempDir dir;
  Net src, dst;
  ganlite::io::load_state_dict(*src, shifted_state(src));
  ganlite::io::save_module(dir / "d.safetensors", *src, {{"kind", "discriminator"}, {"ndf", "8"}});
  const torch::Device device = test_device();
  const auto meta = ganlite::io::load_module(dir / "d.safetensors", *dst, device);
  EXPECT_EQ(meta.at("kind"), "discriminator");
  EXPECT_EQ(meta.at("ndf"), "8");
  EXPECT_EQ(meta.at("format"), "ganlite");
  EXPECT_FALSE(meta.at("ganlite_version").empty());
  EXPECT_EQ(dst->head->weight.device(), device);
  const torch::Tensor x = torch::randn({1, 2, 6, 6});
  src->eval();
  dst->eval();
  EXPECT_TRUE(torch::equal(src->forward(x), dst->forward(x.to(device)).cpu()));

  // A module of another shape: the error names the file and the key.
  struct OtherImpl : torch::nn::Module {
    OtherImpl() { register_module("head", torch::nn::Conv2d(torch::nn::Conv2dOptions(5, 1, 1))); }
  };
  OtherImpl other;
  const std::string msg = error_of([&] { ganlite::io::load_module(dir / "d.safetensors", other); });
  EXPECT_TRUE(contains(msg, "d.safetensors")) << msg;
  EXPECT_TRUE(contains(msg, "'head.weight'")) << msg;
}

TEST(Checkpoint, LoadGeneratorRejectsFilesWithoutArchitecture) {
  TempDir dir;
  ganlite::io::save_safetensors(dir / "plain.safetensors", {{"model.1.weight", torch::ones({4, 3, 7, 7})}});
  std::string msg = error_of([&] { ganlite::io::load_generator(dir / "plain.safetensors"); });
  EXPECT_TRUE(contains(msg, "plain.safetensors")) << msg;
  EXPECT_TRUE(contains(msg, "architecture is unknown")) << msg;
  EXPECT_TRUE(contains(msg, "ganlite import")) << msg;

  Net net;
  ganlite::io::save_module(dir / "d.safetensors", *net, {{"kind", "discriminator"}});
  msg = error_of([&] { ganlite::io::load_generator(dir / "d.safetensors"); });
  EXPECT_TRUE(contains(msg, "holds a discriminator, not a generator")) << msg;

  ganlite::io::save_safetensors(dir / "bad.safetensors", {}, {{"format", "ganlite"}, {"arch_config", "{\"arch\":\"vit\"}"}});
  msg = error_of([&] { ganlite::io::load_generator(dir / "bad.safetensors"); });
  EXPECT_TRUE(contains(msg, "bad.safetensors")) << msg;
  EXPECT_TRUE(contains(msg, "vit")) << msg;
}

TEST(Checkpoint, GeneratorMetadataIsCompleteAndReadable) {
  TempDir dir;
  ganlite::nn::ArchConfig config;
  config.arch = "mobile_resnet";
  config.ngf = 8;
  config.n_blocks = 2;
  config.norm = "batch";
  config.padding = "zero";
  config.output_nc = 1;
  ganlite::nn::Generator generator = ganlite::nn::make_generator(config);
  ganlite::io::save_generator(dir / "g.safetensors", *generator, {{"dataset", "edges2shoes"}});
  const auto contents = ganlite::io::load_safetensors(dir / "g.safetensors");
  const auto& meta = contents.metadata;
  EXPECT_EQ(meta.at("format"), "ganlite");
  EXPECT_EQ(meta.at("kind"), "generator");
  EXPECT_EQ(ganlite::nn::ArchConfig::from_json_string(meta.at("arch_config")), config);
  EXPECT_FALSE(meta.at("ganlite_version").empty());
  EXPECT_EQ(meta.at("arch"), "mobile_resnet");
  EXPECT_EQ(meta.at("ngf"), "8");
  EXPECT_EQ(meta.at("n_blocks"), "2");
  EXPECT_EQ(meta.at("norm"), "batch");
  EXPECT_EQ(meta.at("padding"), "zero");
  EXPECT_EQ(meta.at("input_nc"), "3");
  EXPECT_EQ(meta.at("output_nc"), "1");
  EXPECT_EQ(meta.at("dataset"), "edges2shoes");
  const auto widths = nlohmann::json::parse(meta.at("widths"));
  EXPECT_EQ(widths.at("trunk"), 32);
  EXPECT_EQ(widths.at("blocks"), nlohmann::json({{32}, {32}}));
  EXPECT_EQ(keys_of(contents.tensors), keys_of(ganlite::io::state_dict(*generator)));

  EXPECT_THROW(ganlite::io::save_generator(dir / "h.safetensors", *generator, {{"kind", "x"}}), ganlite::UsageError);
  EXPECT_FALSE(fs::exists(dir / "h.safetensors"));
}

namespace {

ganlite::nn::ArchConfig small_config(const std::string& arch, const std::string& norm) {
  ganlite::nn::ArchConfig c;
  c.arch = arch;
  c.ngf = 4;
  c.n_blocks = 2;
  c.num_downs = 5;
  c.norm = norm;
  return c;
}

}  // namespace

TEST(Checkpoint, GeneratorsRoundTripWithIdenticalKeysAndOutputs) {
  TempDir dir;
  const torch::Device device = test_device();
  ganlite::nn::ArchConfig pruned = small_config("resnet", "instance");
  pruned.widths = {3, 5, 12, 6, 2, {{7}, {1}}};
  ganlite::nn::ArchConfig pruned_inception = small_config("inception", "instance_affine");
  pruned_inception.widths = {4, 8, 16, 8, 4, {{2, 0, 1, 0, 3, 1}, {0, 0, 0, 0, 0, 0}}};
  const std::vector<ganlite::nn::ArchConfig> configs{
      small_config("resnet", "instance"), small_config("resnet", "batch"),
      small_config("mobile_resnet", "instance"), small_config("inception", "batch"),
      small_config("unet", "batch"), pruned, pruned_inception};
  torch::manual_seed(1);
  for (const auto& config : configs) {
    SCOPED_TRACE(config.to_json_string());
    ganlite::nn::Generator g = ganlite::nn::make_generator(config);
    // Move BatchNorm statistics and counters off their initial values before saving.
    g->train();
    g->forward(torch::randn({2, 3, 32, 32}));
    g->eval();
    const fs::path path = dir / (config.arch + "_" + config.norm + ".safetensors");
    ganlite::io::save_generator(path, *g);
    ganlite::nn::Generator loaded = ganlite::io::load_generator(path, device);
    EXPECT_EQ(loaded->config(), config);
    const NamedTensors a = ganlite::io::state_dict(*g);
    const NamedTensors b = ganlite::io::state_dict(*loaded);
    ASSERT_EQ(keys_of(a), keys_of(b));
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(b[i].second.device(), device) << a[i].first;
      EXPECT_EQ(b[i].second.scalar_type(), a[i].second.scalar_type()) << a[i].first;
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second.cpu())) << a[i].first;
    }
    loaded->eval();
    const torch::Tensor x = torch::randn({1, 3, 32, 32});
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(g->forward(x), loaded->forward(x.to(device)).cpu()));
  }
}

TEST(Checkpoint, GeneratorFileWithAMissingTensorNamesFileAndKey) {
  TempDir dir;
  ganlite::nn::Generator g = ganlite::nn::make_generator(small_config("resnet", "instance"));
  ganlite::io::save_generator(dir / "g.safetensors", *g);
  auto contents = ganlite::io::load_safetensors(dir / "g.safetensors");
  const std::string dropped = contents.tensors[0].first;
  contents.tensors.erase(contents.tensors.begin());
  ganlite::io::save_safetensors(dir / "cut.safetensors", contents.tensors, contents.metadata);
  const std::string msg = error_of([&] { ganlite::io::load_generator(dir / "cut.safetensors"); });
  EXPECT_TRUE(contains(msg, "cut.safetensors")) << msg;
  EXPECT_TRUE(contains(msg, "missing key '" + dropped + "'")) << msg;
}

namespace {

// PyTorch's own version of Net: its state_dict() must match ganlite's keys, order, shapes and
// dtypes, and weights must move both ways with identical outputs. The file IO uses only
// json/struct/numpy.
const char* kTorchScript = R"PY(
import json, struct, sys
import numpy as np
import torch

NP = {"F64": "<f8", "F32": "<f4", "I64": "<i8"}
ST = {"float32": "F32", "float64": "F64", "int64": "I64"}

def read(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    buf = data[8 + n:]
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(buf[b:e], NP[info["dtype"]]).reshape(info["shape"]).copy())
    return out

def write(path, tensors):
    header, blobs, pos = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().numpy()
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": ST[str(a.dtype)], "shape": list(a.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(blobs))

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.body = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, bias=False), torch.nn.BatchNorm2d(3),
                                        torch.nn.ReLU(), torch.nn.InstanceNorm2d(3, affine=True))
        self.head = torch.nn.Conv2d(3, 1, 1)

    def forward(self, x):
        return self.head(self.body(x)) * self.scale

torch.manual_seed(0)
net = Net()
mode, folder = sys.argv[1], sys.argv[2]
if mode == "load":
    sd = read(folder + "/ganlite_net.safetensors")
    ref = net.state_dict()
    assert list(sd) == list(ref), (list(sd), list(ref))
    for k, v in ref.items():
        assert sd[k].shape == v.shape and sd[k].dtype == v.dtype, (k, sd[k].shape, v.shape, sd[k].dtype, v.dtype)
    net.load_state_dict(sd, strict=True)
    io = read(folder + "/ganlite_io.safetensors")
    net.eval()
    err = (net(io["input"]) - io["output"]).abs().max().item()
    assert err < 1e-5, err
else:
    net.train()
    net(torch.randn(4, 2, 6, 6))  # moves the BatchNorm running stats and counter
    with torch.no_grad():
        net.scale.fill_(1.5)
        net.body[3].weight.uniform_(0.5, 2.0)
    net.eval()
    x = torch.randn(1, 2, 6, 6)
    write(folder + "/torch_net.safetensors", net.state_dict())
    write(folder + "/torch_io.safetensors", {"input": x, "output": net(x)})
print("OK")
)PY";

}  // namespace

TEST(StateDictInterop, PyTorchLoadsGanliteWeightsAndViceVersa) {
  if (!ganlite::testing::python_has_module("torch") || !ganlite::testing::python_has_module("numpy")) {
    GTEST_SKIP() << "needs /usr/bin/python3 with torch and numpy (apt install python3-torch)";
  }
  TempDir dir;
  ganlite::testing::write_text_file(dir / "net.py", kTorchScript);
  const std::string script = "'" + ganlite::testing::system_python() + "' '" + (dir / "net.py").string() + "' ";

  // ganlite -> PyTorch
  Net net;
  net->train();
  net->forward(torch::randn({4, 2, 6, 6}));
  net->eval();
  const torch::Tensor x = torch::randn({1, 2, 6, 6});
  ganlite::io::save_module(dir / "ganlite_net.safetensors", *net, {{"kind", "test"}});
  ganlite::io::save_safetensors(dir / "ganlite_io.safetensors", {{"input", x}, {"output", net->forward(x)}});
  auto r = ganlite::testing::run_command(script + "load '" + dir.path().string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;

  // PyTorch -> ganlite
  r = ganlite::testing::run_command(script + "save '" + dir.path().string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  Net loaded;
  ganlite::io::load_module(dir / "torch_net.safetensors", *loaded);
  loaded->eval();
  EXPECT_EQ(loaded->body[1]->as<torch::nn::BatchNorm2d>()->num_batches_tracked.item<int64_t>(), 1);
  const auto io = ganlite::io::load_safetensors(dir / "torch_io.safetensors");
  const torch::Tensor out = loaded->forward(io.tensors[0].second);
  EXPECT_TRUE(torch::allclose(out, io.tensors[1].second, 1e-5, 1e-5));
}
