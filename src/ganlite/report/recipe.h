// Recipes: one JSON file per published setting (recipes/*.json), each listing the stages that
// reproduce it as `ganlite` command lines, every hyperparameter with its source, the tiny-scale
// overrides that run the same pipeline on CPU in minutes, and the paper's published figures.
// This unit loads and validates recipe files and resolves a recipe into concrete stages; running
// them is the CLI's job (src/cli/cmd_reproduce.cpp). docs/fidelity.md, "Recipes", describes the
// format.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ganlite::report {

// The words an argument contributes after its flag: none (a switch), one, or several.
// `present` false: the flag is left out.
struct ArgValue {
  bool present = false;
  std::vector<std::string> words;
};

struct RecipeArg {
  std::string flag;    // "--ka-chunks"
  ArgValue full;       // at --scale full
  ArgValue tiny;       // at --scale tiny (the full value unless the recipe overrides it)
  std::string when;    // condition (see kRecipeConditions); empty: always
  std::string source;  // where the value comes from: repository, script and line, or paper table
};

struct RecipeStage {
  std::string name;     // [a-z0-9-]+, unique; the stage's folder is OUT/<name>
  std::string command;  // a ganlite subcommand
  std::string when;     // condition; empty: always
  std::string purpose;  // one line for the report
  std::vector<RecipeArg> args;
};

struct PublishedFigure {
  std::string metric;  // "fid", "miou", "macs", "params_ratio", ...
  std::optional<double> value;  // absent when the paper's number is not known here (note says why)
  std::string source;
  std::string note;
};

// Where the reproduction's own figure comes from: a JSON pointer into a stage's --json output.
struct MeasuredFigure {
  std::string metric;
  std::string stage;
  std::string pointer;  // "/fid", "/student/fid"
  std::string label;    // "student A->B", "teacher"
};

struct Recipe {
  std::filesystem::path file;
  std::string name, paper, method, task, arch, dataset, direction;
  std::string teacher_generator;      // file a teacher stage writes (placeholders allowed)
  std::string teacher_discriminator;  // its discriminator, or empty
  std::string teacher_imported;       // file the import stage writes from a --teacher .pth, or empty
  bool online_teacher = false;        // the teacher is trained inside distillation (OMGD / DCD)
  std::vector<std::string> requires_full;  // inputs a full-scale run needs: inception, segmenter, vgg, miou-labels
  std::vector<PublishedFigure> published;
  std::vector<MeasuredFigure> measured;
  std::vector<std::string> notes;    // deviations and what ganlite lacks for this setting
  std::vector<RecipeStage> stages;
};

// The conditions a stage or argument may carry ("a,b": all of them).
extern const std::vector<std::string> kRecipeConditions;

// Loads and validates one recipe file. UsageError naming the file and the field
// ("recipes/x.json: 'stages[2].args[0].source' must be a non-empty string").
Recipe load_recipe(const std::filesystem::path& file);
// Every *.json in `dir`, sorted by name; UsageError for a bad file or two files of one name.
std::vector<Recipe> load_recipes(const std::filesystem::path& dir);
// The recipe called `name` in `recipes`; UsageError listing the valid names otherwise.
const Recipe& find_recipe(const std::vector<Recipe>& recipes, const std::string& name);

// What `ganlite recipes` lists: name, paper, method, task, dataset, published figures, file.
nlohmann::json recipe_summary_json(const Recipe& recipe);

// The user's inputs to a reproduction.
struct ReproduceInputs {
  std::string scale = "full";  // full | tiny
  std::string data;            // dataset root; empty: the recipe's dataset stage makes one (tiny only)
  std::string out;             // output folder
  std::string teacher;         // a teacher generator (.safetensors, or .pth to import); empty: train it
  std::string teacher_d;       // the teacher's discriminator, for recipes that restore it
  std::string inception;       // FID Inception weights
  std::string segmenter;       // TorchScript segmenter for mIoU
  std::string miou_labels;     // label maps the segmenter's output is scored against
  std::string vgg;             // torchvision vgg16 weights (DCD's perceptual terms)
};

struct ResolvedStage {
  std::string name;
  std::string command;
  std::vector<std::string> args;  // after the subcommand, placeholders substituted
  std::string dir;                // OUT/<name>
  std::string skipped;            // why the stage does not run (its condition); empty: it runs
};

// The recipe's stages for these inputs. UsageError when a needed input is missing (naming the
// flag and the stage that needs it) or an input does not apply to the recipe.
std::vector<ResolvedStage> resolve_stages(const Recipe& recipe, const ReproduceInputs& inputs);

// What became of one stage in a reproduction.
struct StageOutcome {
  ResolvedStage stage;
  std::vector<std::string> argv;  // the whole command line ("ganlite", command, args, common flags)
  std::string status;             // "ran", "reused" (finished in an earlier run), "skipped"
  double seconds = 0;             // of the run that finished it
  std::string result_json;        // the stage's --json output; empty when none
};

// The reproduction's report: the recipe, the inputs, each stage with its command line, and the
// published figures beside the measured ones (null with the reason when not measured).
nlohmann::json reproduce_report_json(const Recipe& recipe, const ReproduceInputs& inputs,
                                     const std::vector<StageOutcome>& outcomes);
// The same report as Markdown.
std::string reproduce_report_markdown(const nlohmann::json& report);

// One command line as a shell would take it (words quoted where needed).
std::string shell_join(const std::vector<std::string>& words);

}  // namespace ganlite::report
