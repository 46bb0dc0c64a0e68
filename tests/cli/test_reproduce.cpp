// Recipes (recipes/*.json), `ganlite recipes` and `ganlite reproduce`: every recipe loads and
// resolves to the stages and flags of its published setting; CAT horse2zebra and CAT GauGAN run
// end to end at tiny scale, the first resumes stage by stage, and a failed stage leaves nothing
// behind; select-checkpoint picks by FID and by mIoU. All recipes at tiny scale:
// bench/reproduce_all.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "ganlite/report/checkpoint_select.h"
#include "ganlite/report/recipe.h"
#include "ganlite/util/error.h"
#include "ganlite/util/tensorboard.h"
#include "metrics/inception_weights.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::testing::read_text_file;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;
using ganlite::testing::write_text_file;
using json = nlohmann::json;

namespace {

const fs::path kRecipes = fs::path(GANLITE_SOURCE_DIR) / "recipes";

std::string recipes_flag() { return " --recipes-dir '" + kRecipes.string() + "'"; }

json parse_output(const ganlite::testing::CommandResult& r) {
  const auto start = r.output.find('{');
  EXPECT_NE(start, std::string::npos) << r.output;
  return json::parse(r.output.substr(start == std::string::npos ? 0 : start));
}

// The words after `flag` in a stage's argv (empty when the flag is absent).
std::vector<std::string> flag_words(const json& stage, const std::string& flag) {
  const auto argv = stage.at("argv").get<std::vector<std::string>>();
  const auto it = std::find(argv.begin(), argv.end(), flag);
  std::vector<std::string> words;
  if (it == argv.end()) return words;
  for (auto w = it + 1; w != argv.end() && w->rfind("--", 0) != 0; ++w) words.push_back(*w);
  if (words.empty()) words.push_back("");  // a switch
  return words;
}

const json& stage_named(const json& dry_run, const std::string& name) {
  for (const auto& s : dry_run.at("stages")) {
    if (s.at("name") == name) return s;
  }
  throw std::runtime_error("no stage " + name);
}

// DRN's cityscapes normalisation (CAT metric/cityscapes_mIoU.py), as the recipes pass it.
const char* const kDrnMean = "0.29010095242892997,0.32808144844279574,0.28696394422942517";
const char* const kDrnStd = "0.1829540508368939,0.18656561047509476,0.18447508988480435";

// A toy TorchScript segmenter for labels2scenes, written to dir/seg.pt: each pixel's class is the
// nearest of the dataset's 6 class colours (make-dataset's dataset.json) after undoing DRN's
// normalisation. Empty when /usr/bin/python3 has no torch to script it.
fs::path tiny_segmenter(const TempDir& dir) {
  if (!ganlite::testing::python_has_module("torch")) return {};
  write_text_file(dir / "make_seg.py",
                  std::string("import torch, sys\n"
                              "mean = torch.tensor([") + kDrnMean + "]).view(1, 3, 1, 1)\n"
                  "std = torch.tensor([" + kDrnStd + "]).view(1, 3, 1, 1)\n"
                  "colors = [[70, 130, 180], [128, 64, 128], [70, 70, 70], [107, 142, 35], [0, 0, 142], [220, 20, 60]]\n"
                  "class Seg(torch.nn.Module):\n"
                  "    def __init__(self):\n"
                  "        super().__init__()\n"
                  "        self.register_buffer('mean', mean)\n"
                  "        self.register_buffer('std', std)\n"
                  "        self.register_buffer('palette', torch.tensor(colors, dtype=torch.float32).view(1, 6, 3, 1, 1) / 255.0)\n"
                  "    def forward(self, x):\n"
                  "        rgb = (x * self.std + self.mean).unsqueeze(1)\n"
                  "        return -((rgb - self.palette) ** 2).sum(2)\n"
                  "torch.jit.script(Seg()).save(sys.argv[1])\n");
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " '" + (dir / "make_seg.py").string() +
                                               "' '" + (dir / "seg.pt").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir / "seg.pt";
}

// The index the releases' rule picks on mIoU alone: the first highest.
size_t first_highest_miou(const json& candidates) {
  size_t best = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].at("miou").get<double>() > candidates[best].at("miou").get<double>()) best = i;
  }
  return best;
}

json dry_run(const std::string& recipe, const std::string& extra) {
  TempDir out;
  const auto r = run_cli("reproduce --recipe " + recipe + " --data /datasets/x --out '" + out.path().string() +
                         "' --inception i.pth --segmenter s.pt --miou-labels labels --vgg-weights vgg16.pth --dry-run --json" +
                         recipes_flag() + extra);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return parse_output(r);
}

}  // namespace

TEST(Recipes, EveryFileLoadsWithASourceForEveryArgumentAndAPublishedFigure) {
  const auto recipes = ganlite::report::load_recipes(kRecipes);
  std::set<std::string> names;
  for (const auto& r : recipes) {
    names.insert(r.name);
    EXPECT_FALSE(r.published.empty()) << r.name;
    for (const auto& p : r.published) EXPECT_FALSE(p.source.empty()) << r.name;
    for (const auto& s : r.stages) {
      for (const auto& a : s.args) EXPECT_FALSE(a.source.empty()) << r.name << " " << s.name << " " << a.flag;
    }
    // Every recipe runs at tiny scale without --data: it has the stage that makes the dataset.
    EXPECT_TRUE(std::any_of(r.stages.begin(), r.stages.end(),
                            [](const auto& s) { return s.command == "make-dataset" && s.when == "no-data"; }))
        << r.name;
  }
  for (const char* required : {"cat-horse2zebra-2.6G", "cat-zebra2horse-2.6G", "cat-cityscapes-5.6G", "cat-map2sat-4.6G",
                               "dcd-horse2zebra", "dcd-summer2winter", "dcd-edges2shoes", "wkd-horse2zebra",
                               "gancompression-horse2zebra-mse-ngf16", "cat-gaugan-cityscapes-5.6G",
                               "cat-gaugan-cityscapes-30G"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
}

TEST(Recipes, ListJsonNamesEveryRecipeFileWithItsPublishedFigure) {
  const auto r = run_cli("recipes --json" + recipes_flag());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = parse_output(r);
  std::set<std::string> listed, files;
  for (const auto& item : j.at("recipes")) {
    listed.insert(item.at("name").get<std::string>());
    EXPECT_FALSE(item.at("published").empty());
    EXPECT_TRUE(item.contains("paper") && item.contains("task") && item.contains("dataset"));
  }
  for (const auto& e : fs::directory_iterator(kRecipes)) {
    if (e.path().extension() == ".json") files.insert(e.path().stem().string());
  }
  EXPECT_EQ(listed, files);
}

TEST(Reproduce, DryRunOfEveryCatRecipeSetsTheReleasesFlags) {
  for (const std::string name : {"cat-horse2zebra-2.6G", "cat-zebra2horse-2.6G", "cat-cityscapes-5.6G", "cat-map2sat-4.6G"}) {
    SCOPED_TRACE(name);
    const json j = dry_run(name, "");
    const json& distill = stage_named(j, "distill");
    EXPECT_EQ(distill.at("argv")[0], "ganlite");
    EXPECT_EQ(distill.at("argv")[1], "distill");
    EXPECT_EQ(flag_words(distill, "--ka-chunks"), std::vector<std::string>{"4"});
    EXPECT_EQ(flag_words(distill, "--batch-size"), std::vector<std::string>{"80"});
    EXPECT_EQ(flag_words(distill, "--method"), std::vector<std::string>{"ka"});
    // The student's D starts from the teacher's: the teacher stage's D file.
    ASSERT_EQ(flag_words(distill, "--restore-d").size(), 1u);
    EXPECT_NE(flag_words(distill, "--restore-d")[0].find("teacher/checkpoints/latest_net_D"), std::string::npos);
    EXPECT_EQ(flag_words(stage_named(j, "prune"), "--target-macs")[0], name.substr(name.rfind('-') + 1));
    EXPECT_TRUE(stage_named(j, "teacher").at("runs").get<bool>());
    EXPECT_FALSE(stage_named(j, "dataset").at("runs").get<bool>());  // --data given
    EXPECT_EQ(flag_words(distill, "--json"), std::vector<std::string>{""});
    if (name.find("cityscapes") != std::string::npos || name.find("map2sat") != std::string::npos) {
      EXPECT_EQ(flag_words(distill, "--gan-mode"), std::vector<std::string>{"hinge"});
      EXPECT_EQ(flag_words(distill, "--norm-D"), std::vector<std::string>{"batch"});
      EXPECT_EQ(flag_words(stage_named(j, "eval"), "--inception"), std::vector<std::string>{"i.pth"});
    } else {
      EXPECT_EQ(flag_words(distill, "--gan-mode"), std::vector<std::string>{"lsgan"});
      const json& stats = stage_named(j, "real-stats");
      const auto folders = flag_words(stats, "--images");
      ASSERT_EQ(folders.size(), 2u);  // CycleGAN protocol: train + test of the target domain
      const std::string target = name.find("zebra2horse") != std::string::npos ? "A" : "B";
      EXPECT_EQ(folders[0], "/datasets/x/train" + target);
      EXPECT_EQ(folders[1], "/datasets/x/test" + target);
    }
  }
  // The select stage scores the distillation's checkpoints; the later stages use its choice.
  for (const std::string name : {"cat-horse2zebra-2.6G", "cat-map2sat-4.6G", "gancompression-horse2zebra-mse-ngf16",
                                 "dcd-edges2shoes"}) {
    SCOPED_TRACE(name);
    const json j = dry_run(name, "");
    const json& select = stage_named(j, "select");
    EXPECT_EQ(select.at("argv")[1], "select-checkpoint");
    EXPECT_TRUE(select.at("runs").get<bool>());
    EXPECT_EQ(flag_words(select, "--inception"), std::vector<std::string>{"i.pth"});
    ASSERT_EQ(flag_words(select, "--run").size(), 1u);
    EXPECT_EQ(fs::path(flag_words(select, "--run")[0]).filename(), "distill");
    const json& profile = stage_named(j, "profile-student");
    EXPECT_NE(flag_words(profile, "--model")[0].find("select/best_net_G.safetensors"), std::string::npos);
    if (name.find("horse2zebra") != std::string::npos) {  // unpaired: scored as fid-student scores
      EXPECT_EQ(flag_words(select, "--real-stats"), flag_words(stage_named(j, "fid-student"), "--real"));
      EXPECT_EQ(flag_words(select, "--input"), flag_words(stage_named(j, "translate-student"), "--input"));
    } else {  // paired: as the eval stage
      EXPECT_EQ(flag_words(select, "--data"), flag_words(stage_named(j, "eval"), "--data"));
      EXPECT_NE(flag_words(stage_named(j, "eval"), "--student")[0].find("select/best_net_G"), std::string::npos);
    }
  }
  const json city = dry_run("cat-cityscapes-5.6G", "");
  EXPECT_EQ(flag_words(stage_named(city, "miou"), "--segmenter"), std::vector<std::string>{"s.pt"});
  EXPECT_EQ(flag_words(stage_named(city, "distill"), "--lambda-ka"), std::vector<std::string>{"0.5"});
  // CAT keeps a cityscapes student that sets a new lowest FID or a new highest mIoU.
  const json& city_select = stage_named(city, "select");
  EXPECT_EQ(flag_words(city_select, "--inception"), std::vector<std::string>{"i.pth"});
  EXPECT_EQ(flag_words(city_select, "--segmenter"), std::vector<std::string>{"s.pt"});
  EXPECT_EQ(flag_words(city_select, "--miou-labels"), flag_words(stage_named(city, "miou"), "--labels"));
  EXPECT_EQ(flag_words(city_select, "--miou-mean"), flag_words(stage_named(city, "miou"), "--mean"));
}

// CAT's GauGAN scripts (scripts/gaugan/cityscapes/*.sh): inception-SPADE teacher with VGG19,
// pruning to the budget with the trunk floored at 16 x 16 channels, KA on 2 GPU chunks averaged
// (0.5 x mean = 0.25 x sum), best checkpoint by mIoU alone (--no_fid).
TEST(Reproduce, DryRunOfTheGauganRecipesSetsTheReleasesFlags) {
  for (const std::string name : {"cat-gaugan-cityscapes-5.6G", "cat-gaugan-cityscapes-30G"}) {
    SCOPED_TRACE(name);
    const json j = dry_run(name, "");
    const json& teacher = stage_named(j, "teacher");
    EXPECT_EQ(flag_words(teacher, "--task"), std::vector<std::string>{"spade"});
    EXPECT_EQ(flag_words(teacher, "--arch"), std::vector<std::string>{"inception_spade"});
    EXPECT_EQ(flag_words(teacher, "--label-nc"), std::vector<std::string>{"35"});
    EXPECT_EQ(flag_words(teacher, "--netD"), std::vector<std::string>{"multiscale"});
    EXPECT_EQ(flag_words(teacher, "--vgg-weights"), std::vector<std::string>{"vgg16.pth"});
    EXPECT_EQ(flag_words(teacher, "--crop-size"), std::vector<std::string>{"512"});
    EXPECT_EQ(flag_words(teacher, "--aspect-ratio"), std::vector<std::string>{"2"});
    const json& prune = stage_named(j, "prune");
    EXPECT_EQ(flag_words(prune, "--target-macs")[0], name.substr(name.rfind('-') + 1));
    EXPECT_EQ(flag_words(prune, "--min-channels"), std::vector<std::string>{"256"});
    EXPECT_EQ(flag_words(prune, "--reinit"), std::vector<std::string>{""});
    const json& distill = stage_named(j, "distill");
    EXPECT_EQ(flag_words(distill, "--method"), std::vector<std::string>{"ka"});
    EXPECT_EQ(flag_words(distill, "--task"), std::vector<std::string>{"spade"});
    EXPECT_EQ(flag_words(distill, "--ka-chunks"), std::vector<std::string>{"2"});
    EXPECT_EQ(flag_words(distill, "--lambda-ka"), std::vector<std::string>{"0.25"});
    EXPECT_EQ(flag_words(distill, "--lambda-recon"), std::vector<std::string>{"0"});
    EXPECT_EQ(flag_words(distill, "--batch-size"), std::vector<std::string>{"16"});
    EXPECT_NE(flag_words(distill, "--restore-d")[0].find("teacher/checkpoints/latest_net_D"), std::string::npos);
    const json& select = stage_named(j, "select");
    EXPECT_EQ(flag_words(select, "--segmenter"), std::vector<std::string>{"s.pt"});
    EXPECT_EQ(flag_words(select, "--miou-labels"), std::vector<std::string>{"labels"});
    EXPECT_EQ(flag_words(select, "--miou-classes"), std::vector<std::string>{"19"});
    EXPECT_TRUE(flag_words(select, "--inception").empty());  // the release selects with --no_fid
    EXPECT_EQ(flag_words(stage_named(j, "eval"), "--inception"), std::vector<std::string>{"i.pth"});
    EXPECT_NE(flag_words(stage_named(j, "eval"), "--student")[0].find("select/best_net_G"), std::string::npos);
    for (const auto& s : j.at("stages")) EXPECT_FALSE(s.contains("unknown_flags")) << s.dump();
  }
  // A full-scale run that trains the teacher needs SPADE's VGG19 weights; one with --teacher not.
  TempDir out;
  const std::string base = "reproduce --recipe cat-gaugan-cityscapes-30G --data d --inception i.pth --segmenter s.pt "
                           "--miou-labels l --dry-run --out '" + out.path().string() + "'" + recipes_flag();
  auto r = run_cli(base);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("stage 'teacher': --vgg-weights needs --vgg-weights FILE"), std::string::npos) << r.output;
  r = run_cli(base + " --teacher t.safetensors --teacher-d d.safetensors");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(Reproduce, DryRunOfTheOtherRecipesSetsTheirMethodsFlags) {
  for (const std::string name : {"dcd-horse2zebra", "dcd-summer2winter", "dcd-edges2shoes"}) {
    SCOPED_TRACE(name);
    const json j = dry_run(name, "");
    const json& distill = stage_named(j, "distill");
    EXPECT_EQ(flag_words(distill, "--online-teacher"), std::vector<std::string>{"mobile_resnet:64"});
    EXPECT_EQ(flag_words(distill, "--n-dis"), std::vector<std::string>{name == "dcd-edges2shoes" ? "1" : "4"});
    EXPECT_EQ(flag_words(distill, "--vgg-weights"), std::vector<std::string>{"vgg16.pth"});
    EXPECT_TRUE(flag_words(distill, "--allow-no-vgg").empty());  // tiny scale only
    EXPECT_EQ(flag_words(distill, "--student-ngf"), std::vector<std::string>{"16"});
    EXPECT_TRUE(std::none_of(j.at("stages").begin(), j.at("stages").end(),
                             [](const json& s) { return s.at("name") == "teacher"; }));  // trained online
  }
  const json wkd = dry_run("wkd-horse2zebra", "");
  for (const std::string stage : {"distill-AtoB", "distill-BtoA"}) {
    EXPECT_EQ(flag_words(stage_named(wkd, stage), "--wkd-weight"), std::vector<std::string>{"0.4"});
    EXPECT_EQ(flag_words(stage_named(wkd, stage), "--wkd-levels"), std::vector<std::string>{"4"});
  }
  const json gc = dry_run("gancompression-horse2zebra-mse-ngf16", "");
  EXPECT_EQ(flag_words(stage_named(gc, "distill"), "--lambda-mse"), std::vector<std::string>{"0.01"});
  EXPECT_EQ(flag_words(stage_named(gc, "distill"), "--lambda-recon"), std::vector<std::string>{"10"});
  // Tiny scale: the recipe's own overrides, the dataset stage, and DCD's VGG terms made optional.
  TempDir out;
  const auto r = run_cli("reproduce --recipe dcd-horse2zebra --scale tiny --out '" + out.path().string() +
                         "' --dry-run --json" + recipes_flag());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json tiny = parse_output(r);
  EXPECT_TRUE(stage_named(tiny, "dataset").at("runs").get<bool>());
  EXPECT_EQ(flag_words(stage_named(tiny, "distill"), "--allow-no-vgg"), std::vector<std::string>{""});
  EXPECT_EQ(flag_words(stage_named(tiny, "distill"), "--data")[0], (out.path() / "dataset").string());
  EXPECT_FALSE(stage_named(tiny, "fid-student").at("runs").get<bool>());  // no Inception weights: no FID
}

TEST(Reproduce, MissingInputsAndUnknownRecipesAreUsageErrorsNamingWhatIsNeeded) {
  TempDir out;
  const std::string o = " --out '" + out.path().string() + "' --dry-run" + recipes_flag();
  auto r = run_cli("reproduce --recipe cat-horse2zebra-2.6G --data d" + o);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--inception"), std::string::npos) << r.output;
  r = run_cli("reproduce --recipe cat-horse2zebra-2.6G --inception i.pth" + o);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--data DIR is required at --scale full"), std::string::npos) << r.output;
  r = run_cli("reproduce --recipe cat-horse2zebra-2.6G --data d --inception i.pth --teacher t.safetensors" + o);
  EXPECT_EQ(r.exit_code, 2) << r.output;  // the student's D restores the teacher's: --teacher-d
  EXPECT_NE(r.output.find("--teacher-d"), std::string::npos) << r.output;
  r = run_cli("reproduce --recipe dcd-horse2zebra --scale tiny --teacher t.safetensors" + o);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("online"), std::string::npos) << r.output;
  r = run_cli("reproduce --recipe no-such-recipe --scale tiny" + o);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown recipe 'no-such-recipe' (valid: cat-cityscapes-5.6G, "), std::string::npos) << r.output;
}

TEST(Reproduce, ABadRecipeFieldIsNamedWithItsFile) {
  TempDir dir;
  json recipe = json::parse(read_text_file(kRecipes / "cat-horse2zebra-2.6G.json"));
  recipe["stages"][3]["args"][1].erase("source");
  write_text_file(dir / "cat-horse2zebra-2.6G.json", recipe.dump(2));
  auto r = run_cli("recipes --recipes-dir '" + dir.path().string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cat-horse2zebra-2.6G.json: 'stages[3].args[1].source' must be a non-empty string"),
            std::string::npos) << r.output;
  recipe = json::parse(read_text_file(kRecipes / "cat-horse2zebra-2.6G.json"));
  recipe["stages"][3]["args"][0]["value"] = "{dir:nowhere}/x";
  write_text_file(dir / "cat-horse2zebra-2.6G.json", recipe.dump(2));
  r = run_cli("recipes --recipes-dir '" + dir.path().string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'stages[3].args[0]': '{dir:nowhere}' names no stage"), std::string::npos) << r.output;
}

// The whole CAT horse2zebra pipeline at tiny scale: synthetic data, teacher, pruning, KA with
// --ka-chunks 4, evaluation; FID with random Inception weights (the test's own: the real ones
// cannot be downloaded, and a run without weights measures no FID). Then a second run reuses
// every stage, and a stage whose record is gone runs again with those after it.
TEST(Reproduce, TinyCatHorse2ZebraRunsEveryStageAndResumesStageByStage) {
  TempDir out;
  const std::string cmd = "reproduce --recipe cat-horse2zebra-2.6G --scale tiny --threads 1 --json --out '" +
                          out.path().string() + "' --inception '" +
                          ganlite::testing::random_inception_weights().string() + "'" + recipes_flag();
  auto r = run_cli(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json report = parse_output(r);
  std::map<std::string, std::string> status;
  for (const auto& s : report.at("stages")) status[s.at("name")] = s.at("status");
  EXPECT_EQ(status["dataset"], "ran");
  EXPECT_EQ(status["teacher"], "ran");
  EXPECT_EQ(status["import-teacher"], "skipped");
  EXPECT_EQ(status["distill"], "ran");
  EXPECT_EQ(status["fid-student"], "ran");
  // The select stage scored the two epoch files (tiny: 2 epochs, saved each) and the final one;
  // the choice is the first lowest FID it recorded, and the report says which.
  EXPECT_EQ(status["select"], "ran");
  const json& choice = report.at("checkpoint");
  ASSERT_TRUE(choice.at("selected").is_object()) << choice.dump();
  const json& candidates = choice.at("candidates");
  ASSERT_EQ(candidates.size(), 3u);
  EXPECT_EQ(candidates[0].at("epoch"), 1);
  EXPECT_EQ(candidates[1].at("epoch"), 2);
  EXPECT_TRUE(candidates[2].at("epoch").is_null());
  size_t argmin = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    ASSERT_TRUE(candidates[i].at("fid").is_number());
    if (candidates[i].at("fid").get<double>() < candidates[argmin].at("fid").get<double>()) argmin = i;
  }
  EXPECT_EQ(choice.at("selected").at("file"), candidates[argmin].at("file"));
  EXPECT_EQ(read_text_file(out / "select" / "best_net_G.safetensors"),
            read_text_file(candidates[argmin].at("file").get<std::string>()));
  EXPECT_NE(read_text_file(out / "report.md").find("## Checkpoint"), std::string::npos);
  bool fid_measured = false;
  for (const auto& f : report.at("figures")) {
    if (f.at("metric") != "fid") continue;
    EXPECT_EQ(f.at("published")[0].at("value"), 60.18);
    for (const auto& m : f.at("measured")) fid_measured |= m.at("value").is_number();
  }
  EXPECT_TRUE(fid_measured);
  EXPECT_TRUE(report.contains("caveat"));
  EXPECT_TRUE(fs::is_regular_file(out / "report.md"));
  EXPECT_TRUE(fs::is_regular_file(out / "distill" / "checkpoints" / "latest_net_G.safetensors"));
  // The train and distill stages write TensorBoard event files beside their metrics.jsonl.
  for (const char* stage : {"teacher", "distill"}) EXPECT_EQ(ganlite::event_files_in(out / stage).size(), 1u) << stage;
  const json distill_config = json::parse(read_text_file(out / "distill" / "config.json"));
  EXPECT_EQ(distill_config.at("distill").at("ka_chunks"), 4);
  // The target domain's statistics pool trainB (8 images) and testB (4).
  EXPECT_EQ(json::parse(read_text_file(out / "stages" / "real-stats.json")).at("result").at("count"), 12);
  // translate --paired-half (cityscapes mIoU's inputs): the chosen half of each image.
  const auto half = run_cli("translate --model '" + (out / "distill" / "checkpoints" / "latest_net_G.safetensors").string() +
                            "' --input '" + (out / "dataset" / "testA").string() + "' --paired-half B --threads 1 --out '" +
                            (out / "half").string() + "'");
  ASSERT_EQ(half.exit_code, 0) << half.output;
  const cv::Mat translated = ganlite::data::read_image_rgb(*fs::directory_iterator(out / "half"));
  EXPECT_EQ(translated.cols, 16);
  EXPECT_EQ(translated.rows, 32);

  r = run_cli(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  report = parse_output(r);
  for (const auto& s : report.at("stages")) {
    if (s.at("status") != "skipped") {
      EXPECT_EQ(s.at("status"), "reused") << s.at("name");
    }
  }
  fs::remove(out / "stages" / "fid-student.json");
  r = run_cli(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  report = parse_output(r);
  std::vector<std::string> ran;
  for (const auto& s : report.at("stages")) {
    if (s.at("status") == "ran") ran.push_back(s.at("name"));
  }
  EXPECT_EQ(ran, (std::vector<std::string>{"fid-student", "fid-teacher"}));
}

namespace {

// A run folder whose epoch files and final checkpoint are distinct random tiny generators.
fs::path fake_run(const fs::path& dir, const std::vector<int>& epochs) {
  ganlite::nn::ArchConfig arch;
  arch.arch = "resnet";
  arch.ngf = 4;
  arch.n_blocks = 1;
  fs::create_directories(dir / "checkpoints");
  torch::manual_seed(3);
  for (const int e : epochs) {
    char name[64];
    std::snprintf(name, sizeof(name), "epoch_%03d_net_G.safetensors", e);
    ganlite::io::save_generator(dir / "checkpoints" / name, *ganlite::nn::make_generator(arch));
  }
  ganlite::io::save_generator(dir / "checkpoints" / "latest_net_G.safetensors", *ganlite::nn::make_generator(arch));
  return dir;
}

}  // namespace

// select-checkpoint by the fid stage's protocol: every epoch file (in epoch order, 10 after 9)
// and the final one scored, the first lowest FID chosen and copied, each FID what `ganlite
// translate` + `ganlite fid` give for that file.
TEST(SelectCheckpoint, PicksTheLowestFidAndScoresAsTheFidStageDoes) {
  TempDir dir;
  const std::string weights = "'" + ganlite::testing::random_inception_weights().string() + "'";
  auto r = run_cli("make-dataset --kind shapes2stripes --count 4 --test-count 4 --size 32 --seed 1 --out '" +
                   (dir / "data").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("stats --images '" + (dir / "data" / "trainB").string() + "' --inception " + weights + " --out '" +
              (dir / "real.npz").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = fake_run(dir / "run", {10, 2, 9});
  const std::string cmd = "select-checkpoint --run '" + run.string() + "' --input '" + (dir / "data" / "testA").string() +
                          "' --real-stats '" + (dir / "real.npz").string() + "' --threads 1 --json --out '" +
                          (dir / "select").string() + "'";
  r = run_cli(cmd + " --inception " + weights);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = parse_output(r);
  const json& candidates = j.at("candidates");
  ASSERT_EQ(candidates.size(), 4u);
  std::vector<json> epochs;
  for (const auto& c : candidates) epochs.push_back(c.at("epoch"));
  EXPECT_EQ(epochs, (std::vector<json>{2, 9, 10, nullptr}));
  size_t argmin = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].at("fid").get<double>() < candidates[argmin].at("fid").get<double>()) argmin = i;
  }
  EXPECT_EQ(j.at("selected"), candidates[argmin]);
  EXPECT_EQ(json::parse(read_text_file(dir / "select" / "selection.json")), j);
  const std::string chosen = candidates[argmin].at("file");
  EXPECT_EQ(read_text_file(dir / "select" / "best_net_G.safetensors"), read_text_file(chosen));
  // The recorded FID is the fid stage's figure for that file (same images, same arithmetic).
  r = run_cli("translate --model '" + chosen + "' --input '" + (dir / "data" / "testA").string() + "' --threads 1 --out '" +
              (dir / "fakes").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("fid --real '" + (dir / "real.npz").string() + "' --fake '" + (dir / "fakes").string() +
              "' --threads 1 --json --inception " + weights);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const double fid = parse_output(r).at("fid").get<double>();
  EXPECT_NEAR(candidates[argmin].at("fid").get<double>(), fid, 1e-6 * std::max(1.0, std::abs(fid)));

  // Without Inception weights nothing is scored: the final checkpoint, and the reason.
  r = run_cli(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json fallback = parse_output(r);
  EXPECT_TRUE(fallback.at("selected").at("epoch").is_null());
  EXPECT_TRUE(fallback.at("metric").is_null());
  for (const auto& c : fallback.at("candidates")) EXPECT_TRUE(c.at("fid").is_null());
  EXPECT_NE(fallback.at("reason").get<std::string>().find("no --inception"), std::string::npos);
  EXPECT_EQ(read_text_file(dir / "select" / "best_net_G.safetensors"),
            read_text_file(run / "checkpoints" / "latest_net_G.safetensors"));
}

// The releases' rule (evaluate_model): a new lowest FID or a new highest mIoU makes the best;
// ties keep the earlier one; with no scores the final checkpoint.
TEST(SelectCheckpoint, TheReleasesRuleCombinesFidAndMiou) {
  using ganlite::report::CheckpointCandidate;
  auto c = [](std::optional<double> fid, std::optional<double> miou) {
    return CheckpointCandidate{"x", int64_t{1}, fid, miou};
  };
  using ganlite::report::select_best_checkpoint;
  EXPECT_EQ(select_best_checkpoint({c(50, {}), c(40, {}), c(40, {}), c(45, {})}), 1u);
  // Epoch 3 sets a new best mIoU with a worse FID: CAT saves it as best.
  EXPECT_EQ(select_best_checkpoint({c(50, 30), c(40, 35), c(45, 36), c(44, 20)}), 2u);
  EXPECT_EQ(select_best_checkpoint({c({}, {}), c({}, {}), c({}, {})}), 2u);
  EXPECT_THROW(select_best_checkpoint({}), ganlite::Error);
}

// The whole CAT GauGAN pipeline at tiny scale: labels2scenes, an inception-SPADE teacher,
// pruning, KA distillation with SPADE's losses, selection by mIoU with a tiny TorchScript
// segmenter (the release's rule: the first highest mIoU), profile and eval of the selected
// student; the report puts the selected checkpoint's mIoU beside the published figure.
TEST(Reproduce, TinyCatGauganRunsEveryStageAndSelectsByMiou) {
  TempDir out;
  const fs::path segmenter = tiny_segmenter(out);
  if (segmenter.empty()) GTEST_SKIP() << "/usr/bin/python3 has no torch to script a segmenter";
  const fs::path run = out / "run";
  const auto r = run_cli("reproduce --recipe cat-gaugan-cityscapes-5.6G --scale tiny --threads 1 --json --out '" +
                         run.string() + "' --segmenter '" + segmenter.string() + "' --miou-labels '" +
                         (run / "dataset" / "test_labels").string() + "'" + recipes_flag());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json report = parse_output(r);
  std::map<std::string, std::string> status;
  for (const auto& s : report.at("stages")) status[s.at("name")] = s.at("status");
  for (const char* stage : {"dataset", "teacher", "prune", "distill", "select", "profile-student", "eval"}) {
    EXPECT_EQ(status[stage], "ran") << stage;
  }
  EXPECT_EQ(status["import-teacher"], "skipped");
  // KA as the release weighs it: 2 chunks, 0.25 x their sum; no L1 term.
  const json distill_config = json::parse(read_text_file(run / "distill" / "config.json"));
  EXPECT_EQ(distill_config.at("distill").at("ka_chunks"), 2);
  EXPECT_EQ(distill_config.at("distill").at("lambda_recon"), 0.0);
  EXPECT_EQ(distill_config.at("task"), "spade");
  // The student is the pruned inception-SPADE generator.
  const auto student = ganlite::io::load_generator(run / "select" / "best_net_G.safetensors", torch::kCPU);
  EXPECT_EQ(student->config().arch, "inception_spade");
  EXPECT_LT(student->config().ngf, 4);
  // Selection by mIoU alone over the two epoch files and the final checkpoint.
  const json& choice = report.at("checkpoint");
  ASSERT_TRUE(choice.at("selected").is_object()) << choice.dump();
  EXPECT_EQ(choice.at("metric"), "miou");
  const json& candidates = choice.at("candidates");
  ASSERT_EQ(candidates.size(), 3u);
  for (const auto& c : candidates) {
    ASSERT_TRUE(c.at("miou").is_number()) << c.dump();
    EXPECT_TRUE(c.at("fid").is_null());
    EXPECT_GE(c.at("miou").get<double>(), 0.0);
    EXPECT_LE(c.at("miou").get<double>(), 100.0);
  }
  const size_t best = first_highest_miou(candidates);
  EXPECT_EQ(choice.at("selected").at("file"), candidates[best].at("file"));
  EXPECT_EQ(read_text_file(run / "select" / "best_net_G.safetensors"),
            read_text_file(candidates[best].at("file").get<std::string>()));
  bool miou_reported = false;
  for (const auto& f : report.at("figures")) {
    if (f.at("metric") != "miou") continue;
    ASSERT_EQ(f.at("measured").size(), 1u);
    EXPECT_EQ(f.at("measured")[0].at("value"), candidates[best].at("miou"));
    EXPECT_TRUE(f.at("published")[0].at("value").is_null());  // the 5.6G figure is not known here
    miou_reported = true;
  }
  EXPECT_TRUE(miou_reported);
  EXPECT_FALSE(fs::exists(run / "select" / "miou_images"));  // scored images are not kept
}

// select-checkpoint by mIoU on paired data (pix2pix cityscapes' protocol): each candidate's mIoU
// is what `ganlite translate --paired-half` + `ganlite miou` give for it; the first highest is
// chosen; the segmenter needs its labels.
TEST(SelectCheckpoint, PicksTheHighestMiouAndScoresAsTheMiouStageDoes) {
  TempDir dir;
  const fs::path segmenter = tiny_segmenter(dir);
  if (segmenter.empty()) GTEST_SKIP() << "/usr/bin/python3 has no torch to script a segmenter";
  auto r = run_cli("make-dataset --kind labels2scenes --count 2 --test-count 3 --size 32 --seed 1 --out '" +
                   (dir / "data").string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = fake_run(dir / "run", {1, 2});
  const std::string labels = (dir / "data" / "test_labels").string();
  const std::string cmd = "select-checkpoint --run '" + run.string() + "' --data '" + (dir / "data").string() +
                          "' --task pix2pix --direction BtoA --segmenter '" + segmenter.string() + "' --miou-classes 6 --miou-mean " +
                          kDrnMean + " --miou-std " + kDrnStd + " --threads 1 --json --out '" + (dir / "select").string() + "'";
  r = run_cli(cmd + " --miou-labels '" + labels + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = parse_output(r);
  EXPECT_EQ(j.at("metric"), "miou");
  const json& candidates = j.at("candidates");
  ASSERT_EQ(candidates.size(), 3u);
  for (const auto& c : candidates) {
    ASSERT_TRUE(c.at("miou").is_number()) << c.dump();
    // The miou stage's figure for this file: the B (label) halves translated, then segmented.
    const std::string file = c.at("file");
    const fs::path fakes = dir / ("fakes_" + c.at("label").get<std::string>());
    auto t = run_cli("translate --model '" + file + "' --input '" + (dir / "data" / "test").string() +
                     "' --paired-half B --threads 1 --out '" + fakes.string() + "'");
    ASSERT_EQ(t.exit_code, 0) << t.output;
    t = run_cli("miou --segmenter '" + segmenter.string() + "' --images '" + fakes.string() + "' --labels '" + labels +
                "' --classes 6 --mean " + kDrnMean + " --std " + kDrnStd + " --threads 1 --json");
    ASSERT_EQ(t.exit_code, 0) << t.output;
    const double miou = parse_output(t).at("miou").get<double>();
    EXPECT_NEAR(c.at("miou").get<double>(), miou, 1e-9 * std::max(1.0, miou)) << file;
  }
  const size_t best = first_highest_miou(candidates);
  EXPECT_EQ(j.at("selected"), candidates[best]);
  EXPECT_EQ(read_text_file(dir / "select" / "best_net_G.safetensors"),
            read_text_file(candidates[best].at("file").get<std::string>()));
  r = run_cli(cmd);  // no --miou-labels
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--segmenter needs --miou-labels"), std::string::npos) << r.output;
}

TEST(Reproduce, AFailedStageIsNamedAndLeavesNoFolderOrRecord) {
  TempDir out;
  write_text_file(out / "bad_teacher.safetensors", "not a model");
  const auto r = run_cli("reproduce --recipe gancompression-horse2zebra-mse-ngf16 --scale tiny --threads 1 --out '" +
                         (out / "run").string() + "' --teacher '" + (out / "bad_teacher.safetensors").string() +
                         "' --teacher-d '" + (out / "bad_teacher.safetensors").string() + "'" + recipes_flag());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("stage 'distill' failed"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "run" / "distill"));
  EXPECT_FALSE(fs::exists(out / "run" / "stages" / "distill.json"));
  EXPECT_TRUE(fs::exists(out / "run" / "stages" / "dataset.json"));  // the stage before it finished
}

// DCD's recipes need the online teacher's distill flags. Until this build has them, reproduce
// names the missing flags and runs nothing; once it has them, the tiny run must pass.
TEST(Reproduce, TinyDcdRunsOnceTheOnlineTeacherFlagsExistAndIsRefusedBeforeThat) {
  TempDir out;
  const std::string base = "reproduce --recipe dcd-horse2zebra --scale tiny --threads 1 --json --out '" +
                           out.path().string() + "'" + recipes_flag();
  const json plan = parse_output(run_cli(base + " --dry-run"));
  const json& distill = stage_named(plan, "distill");
  const auto r = run_cli(base);
  if (distill.contains("unknown_flags")) {
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("stage 'distill': `ganlite distill` has no --online-teacher"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out / "dataset"));  // nothing was run
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
}
