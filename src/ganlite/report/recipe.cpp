#include "ganlite/report/recipe.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"

namespace ganlite::report {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<std::string> kRecipeConditions = {
    "data",      "no-data",   "teacher",     "no-teacher", "teacher-pth", "inception", "no-inception",
    "segmenter", "miou-labels", "vgg",       "no-vgg",     "tiny",        "full"};

namespace {

// Placeholders a recipe's values may hold, and the reproduce flag that supplies each.
const std::map<std::string, std::string> kPlaceholderFlags = {
    {"data", "--data"},           {"out", "--out"},           {"teacher_g", "--teacher"},
    {"teacher_d", "--teacher-d"}, {"teacher_file", "--teacher"}, {"inception", "--inception"},
    {"segmenter", "--segmenter"}, {"miou_labels", "--miou-labels"}, {"vgg", "--vgg-weights"}};

// "name": lower-case words joined by '-' or '.', as file names and stage folders take them.
bool is_plain_name(const std::string& s) {
  if (s.empty() || s.size() > 80 || s.front() == '-' || s.front() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || (c >= 'A' && c <= 'Z');
  });
}

std::string required_string(const JsonFields& f, const std::string& key) {
  std::string out;
  f.get(key, out);
  if (out.empty()) throw UsageError(f.where(key) + " must be a non-empty string");
  return out;
}

// A value as the words it adds after its flag: string / number -> one word, true -> a switch,
// false / null -> absent, array -> one word per item.
ArgValue arg_value(const json& v, const std::string& where) {
  ArgValue out;
  auto word = [&](const json& item) -> std::string {
    if (item.is_string()) return item.get<std::string>();
    if (item.is_number_integer() || item.is_number_unsigned()) return item.dump();
    if (item.is_number_float()) {
      std::ostringstream s;
      s << item.get<double>();
      return s.str();
    }
    throw UsageError(where + " must be a string, a number, a boolean, null or an array of strings, got " + item.dump());
  };
  if (v.is_null() || (v.is_boolean() && !v.get<bool>())) return out;
  out.present = true;
  if (v.is_boolean()) return out;
  if (v.is_array()) {
    if (v.empty() || v.size() > 64) throw UsageError(where + " must hold 1 to 64 words");
    for (const auto& item : v) out.words.push_back(word(item));
  } else {
    out.words.push_back(word(v));
  }
  return out;
}

void check_condition(const std::string& when, const std::string& where) {
  if (when.empty()) return;
  std::stringstream s(when);
  std::string token;
  while (std::getline(s, token, ',')) {
    if (std::find(kRecipeConditions.begin(), kRecipeConditions.end(), token) == kRecipeConditions.end()) {
      std::string valid;
      for (const auto& c : kRecipeConditions) valid += (valid.empty() ? "" : ", ") + c;
      throw UsageError(where + ": unknown condition '" + token + "' (valid: " + valid + ")");
    }
  }
}

// Each {placeholder} in `text` is known, and {dir:X} names a stage of the recipe.
void check_placeholders(const std::string& text, const std::set<std::string>& stages, const std::string& where) {
  size_t pos = 0;
  while ((pos = text.find('{', pos)) != std::string::npos) {
    const size_t end = text.find('}', pos);
    if (end == std::string::npos) throw UsageError(where + ": unclosed '{' in '" + text + "'");
    const std::string key = text.substr(pos + 1, end - pos - 1);
    if (key.rfind("dir:", 0) == 0) {
      if (!stages.count(key.substr(4))) {
        throw UsageError(where + ": '{" + key + "}' names no stage of the recipe");
      }
    } else if (!kPlaceholderFlags.count(key)) {
      std::string valid = "{dir:STAGE}";
      for (const auto& [k, flag] : kPlaceholderFlags) valid += ", {" + k + "}";
      throw UsageError(where + ": unknown placeholder '{" + key + "}' (valid: " + valid + ")");
    }
    pos = end + 1;
  }
}

RecipeArg load_arg(const json& j, const std::string& file, const std::string& prefix) {
  JsonFields f(j, file, prefix);
  f.refuse_unknown({"flag", "value", "tiny", "when", "source"});
  RecipeArg a;
  a.flag = required_string(f, "flag");
  if (a.flag.rfind("--", 0) != 0 || a.flag.size() < 3) throw UsageError(f.where("flag") + " must start with '--', got '" + a.flag + "'");
  if (!f.find("value")) throw UsageError(f.where("value") + " is missing (null: only at tiny scale)");
  a.full = arg_value(*f.find("value"), f.where("value"));
  a.tiny = f.find("tiny") ? arg_value(*f.find("tiny"), f.where("tiny")) : a.full;
  f.get("when", a.when);
  check_condition(a.when, f.where("when"));
  a.source = required_string(f, "source");
  return a;
}

RecipeStage load_stage(const json& j, const std::string& file, const std::string& prefix) {
  JsonFields f(j, file, prefix);
  f.refuse_unknown({"name", "command", "when", "purpose", "args"});
  RecipeStage s;
  s.name = required_string(f, "name");
  if (!is_plain_name(s.name)) throw UsageError(f.where("name") + " must be letters, digits, '-', '_' or '.', got '" + s.name + "'");
  s.command = required_string(f, "command");
  f.get("when", s.when);
  check_condition(s.when, f.where("when"));
  f.get("purpose", s.purpose);
  const json* args = f.find("args");
  if (!args || !args->is_array()) throw UsageError(f.where("args") + " must be an array");
  for (size_t i = 0; i < args->size(); ++i) {
    s.args.push_back(load_arg((*args)[i], file, prefix + "args[" + std::to_string(i) + "]."));
  }
  return s;
}

void load_figures(const JsonFields& f, Recipe& r, const std::string& file) {
  const json* published = f.find("published");
  if (!published || !published->is_array() || published->empty()) {
    throw UsageError(f.where("published") + " must be a non-empty array of {metric, value, source}");
  }
  for (size_t i = 0; i < published->size(); ++i) {
    JsonFields p((*published)[i], file, "published[" + std::to_string(i) + "].");
    p.refuse_unknown({"metric", "value", "source", "note"});
    PublishedFigure fig;
    fig.metric = required_string(p, "metric");
    const json* v = p.find("value");
    if (!v) throw UsageError(p.where("value") + " is missing (null when the paper's number is not known; say why in 'note')");
    if (!v->is_null()) fig.value = json_number(*v, p.where("value"), -1e30, 1e30);
    fig.source = required_string(p, "source");
    p.get("note", fig.note);
    if (!fig.value && fig.note.empty()) throw UsageError(p.where("note") + " must say why 'value' is null");
    r.published.push_back(fig);
  }
  const json* measured = f.find("measured");
  if (!measured || !measured->is_array()) throw UsageError(f.where("measured") + " must be an array of {metric, stage, pointer}");
  for (size_t i = 0; i < measured->size(); ++i) {
    JsonFields m((*measured)[i], file, "measured[" + std::to_string(i) + "].");
    m.refuse_unknown({"metric", "stage", "pointer", "label"});
    MeasuredFigure fig{required_string(m, "metric"), required_string(m, "stage"), required_string(m, "pointer"), ""};
    m.get("label", fig.label);
    if (fig.pointer.front() != '/') throw UsageError(m.where("pointer") + " must be a JSON pointer ('/fid'), got '" + fig.pointer + "'");
    const bool known = std::any_of(r.stages.begin(), r.stages.end(), [&](const RecipeStage& s) { return s.name == fig.stage; });
    if (!known) throw UsageError(m.where("stage") + ": no stage named '" + fig.stage + "'");
    r.measured.push_back(fig);
  }
}

void load_teacher(const JsonFields& f, Recipe& r, const std::set<std::string>& stage_names) {
  const JsonFields t = f.object("teacher");
  t.refuse_unknown({"generator", "discriminator", "imported", "online"});
  t.get("online", r.online_teacher);
  t.get("generator", r.teacher_generator);
  t.get("discriminator", r.teacher_discriminator);
  t.get("imported", r.teacher_imported);
  if (r.teacher_generator.empty()) throw UsageError(t.where("generator") + " must name the teacher generator file a stage writes");
  for (const auto* key : {"generator", "discriminator", "imported"}) {
    std::string v;
    t.get(key, v);
    check_placeholders(v, stage_names, t.where(key));
  }
}

}  // namespace

Recipe load_recipe(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw UsageError("cannot read recipe '" + file.string() + "'");
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string where = file.string();
  const json j = parse_config_json(buf.str(), where);
  JsonFields f(j, where);
  f.refuse_unknown({"name", "paper", "method", "task", "arch", "dataset", "direction", "teacher", "requires_full",
                    "published", "measured", "notes", "stages"});
  Recipe r;
  r.file = file;
  r.name = required_string(f, "name");
  if (r.name != file.stem().string()) {
    throw UsageError(f.where("name") + " must equal the file's name '" + file.stem().string() + "', got '" + r.name + "'");
  }
  r.paper = required_string(f, "paper");
  r.method = required_string(f, "method");
  r.task = required_string(f, "task");
  r.arch = required_string(f, "arch");
  r.dataset = required_string(f, "dataset");
  f.get("direction", r.direction);
  f.get("requires_full", r.requires_full, 8);
  for (const auto& need : r.requires_full) {
    if (need != "inception" && need != "segmenter" && need != "miou-labels" && need != "vgg") {
      throw UsageError(f.where("requires_full") + ": unknown input '" + need + "' (valid: inception, segmenter, miou-labels, vgg)");
    }
  }
  f.get("notes", r.notes, 64);
  const json* stages = f.find("stages");
  if (!stages || !stages->is_array() || stages->empty()) throw UsageError(f.where("stages") + " must be a non-empty array");
  std::set<std::string> names;
  for (size_t i = 0; i < stages->size(); ++i) {
    r.stages.push_back(load_stage((*stages)[i], where, "stages[" + std::to_string(i) + "]."));
    if (!names.insert(r.stages.back().name).second) {
      throw UsageError(where + ": 'stages[" + std::to_string(i) + "].name': two stages are called '" + r.stages.back().name + "'");
    }
  }
  for (size_t i = 0; i < r.stages.size(); ++i) {
    for (size_t k = 0; k < r.stages[i].args.size(); ++k) {
      const auto& a = r.stages[i].args[k];
      const std::string at = where + ": 'stages[" + std::to_string(i) + "].args[" + std::to_string(k) + "]'";
      for (const auto& w : a.full.words) check_placeholders(w, names, at);
      for (const auto& w : a.tiny.words) check_placeholders(w, names, at);
    }
  }
  load_teacher(f, r, names);
  load_figures(f, r, where);
  return r;
}

std::vector<Recipe> load_recipes(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw UsageError("recipes folder '" + dir.string() + "' does not exist");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<Recipe> recipes;
  for (const auto& file : files) recipes.push_back(load_recipe(file));
  if (recipes.empty()) throw UsageError("no recipes (*.json) in '" + dir.string() + "'");
  return recipes;
}

const Recipe& find_recipe(const std::vector<Recipe>& recipes, const std::string& name) {
  for (const auto& r : recipes) {
    if (r.name == name) return r;
  }
  std::string valid;
  for (const auto& r : recipes) valid += (valid.empty() ? "" : ", ") + r.name;
  throw UsageError("unknown recipe '" + name + "' (valid: " + valid + ")");
}

json recipe_summary_json(const Recipe& r) {
  json published = json::array();
  for (const auto& p : r.published) {
    published.push_back({{"metric", p.metric}, {"value", p.value ? json(*p.value) : json(nullptr)}, {"source", p.source}});
    if (!p.note.empty()) published.back()["note"] = p.note;
  }
  json stages = json::array();
  for (const auto& s : r.stages) stages.push_back(s.name);
  return {{"name", r.name},       {"paper", r.paper},         {"method", r.method},
          {"task", r.task},       {"arch", r.arch},           {"dataset", r.dataset},
          {"direction", r.direction}, {"online_teacher", r.online_teacher}, {"published", published},
          {"stages", stages},     {"notes", r.notes},         {"file", r.file.string()}};
}

namespace {

struct Context {
  const Recipe& recipe;
  const ReproduceInputs& in;
  std::map<std::string, std::string> values;  // placeholder -> its text ("" when not supplied)
  std::map<std::string, bool> conditions;
};

// Why a stage whose condition is `token` does not run, for the dry run and the report.
std::string condition_failure(const std::string& token) {
  static const std::map<std::string, std::string> why = {
      {"data", "no --data: the dataset stage makes one"},
      {"no-data", "--data given"},
      {"teacher", "no --teacher: the teacher stage trains one"},
      {"no-teacher", "--teacher given"},
      {"teacher-pth", "no .pth teacher to import"},
      {"inception", "no --inception: FID needs the user's Inception weights (never faked)"},
      {"no-inception", "--inception given"},
      {"segmenter", "no --segmenter / --miou-labels: mIoU needs the user's segmenter"},
      {"miou-labels", "no --miou-labels"},
      {"vgg", "no --vgg-weights"},
      {"no-vgg", "--vgg-weights given"},
      {"tiny", "--scale full"},
      {"full", "--scale tiny"}};
  return why.at(token);
}

bool holds(const Context& c, const std::string& when, std::string* why) {
  std::stringstream s(when);
  std::string token;
  while (std::getline(s, token, ',')) {
    if (token.empty() || c.conditions.at(token)) continue;
    if (why) *why = condition_failure(token);
    return false;
  }
  return true;
}

// Substitutes every placeholder; a missing input is an error naming its flag unless `lenient`.
std::string substitute(const Context& c, const std::string& text, const std::string& stage, const std::string& flag,
                       bool lenient) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find('{', pos);
    if (open == std::string::npos) break;
    const size_t close = text.find('}', open);
    const std::string key = text.substr(open + 1, close - open - 1);
    out += text.substr(pos, open - pos);
    std::string value;
    if (key.rfind("dir:", 0) == 0) {
      value = (fs::path(c.in.out) / key.substr(4)).string();
    } else {
      value = c.values.at(key);
      if (value.empty() && !lenient) {
        throw UsageError("recipe '" + c.recipe.name + "', stage '" + stage + "': " + flag + " needs " +
                         kPlaceholderFlags.at(key) + (key == "teacher_d" ? " FILE (the teacher's discriminator) with --teacher" : " FILE"));
      }
      if (value.empty()) value = "{" + key + "}";
      // The recipe's own teacher files name the stage that writes them ({dir:teacher}/...).
      if (key != "teacher_file" && value.find("{dir:") != std::string::npos) value = substitute(c, value, stage, flag, lenient);
    }
    out += value;
    pos = close + 1;
  }
  return out + text.substr(pos);
}

Context make_context(const Recipe& r, const ReproduceInputs& in) {
  Context c{r, in, {}, {}};
  const bool pth = fs::path(in.teacher).extension() == ".pth";
  const std::string data = in.data.empty() ? (fs::path(in.out) / "dataset").string() : in.data;
  c.values = {{"data", data},
              {"out", in.out},
              {"teacher_file", in.teacher},
              {"teacher_g", in.teacher.empty() ? r.teacher_generator : (pth ? r.teacher_imported : in.teacher)},
              {"teacher_d", in.teacher.empty() ? r.teacher_discriminator : in.teacher_d},
              {"inception", in.inception},
              {"segmenter", in.segmenter},
              {"miou_labels", in.miou_labels},
              {"vgg", in.vgg}};
  c.conditions = {{"data", !in.data.empty()},
                  {"no-data", in.data.empty()},
                  {"teacher", !in.teacher.empty()},
                  {"no-teacher", in.teacher.empty()},
                  {"teacher-pth", pth},
                  {"inception", !in.inception.empty()},
                  {"no-inception", in.inception.empty()},
                  {"segmenter", !in.segmenter.empty() && !in.miou_labels.empty()},
                  {"miou-labels", !in.miou_labels.empty()},
                  {"vgg", !in.vgg.empty()},
                  {"no-vgg", in.vgg.empty()},
                  {"tiny", in.scale == "tiny"},
                  {"full", in.scale == "full"}};
  return c;
}

void check_inputs(const Recipe& r, const ReproduceInputs& in) {
  const std::string who = "recipe '" + r.name + "'";
  if (in.scale != "full" && in.scale != "tiny") throw UsageError("--scale must be full or tiny, got '" + in.scale + "'");
  if (in.out.empty()) throw UsageError("--out DIR is required");
  if (in.data.empty() && in.scale == "full") {
    throw UsageError("--data DIR is required at --scale full (" + who + " reads the " + r.dataset + " dataset)");
  }
  if (r.online_teacher && !in.teacher.empty()) {
    throw UsageError(who + " trains its teacher online with the student (OMGD / DCD): --teacher does not apply");
  }
  if (!in.teacher_d.empty() && in.teacher.empty()) throw UsageError("--teacher-d goes with --teacher");
  if (fs::path(in.teacher).extension() == ".pth" && r.teacher_imported.empty()) {
    throw UsageError(who + " has no import stage: give --teacher as a ganlite .safetensors generator");
  }
  if (in.scale != "full") return;
  const std::map<std::string, std::pair<std::string, std::string>> flags = {
      {"inception", {in.inception, "--inception FILE (pt_inception-2015-12-05-6726825d.pth) for the paper's FID"}},
      {"segmenter", {in.segmenter, "--segmenter FILE (a TorchScript DRN-D-105) for the paper's mIoU"}},
      {"miou-labels", {in.miou_labels, "--miou-labels DIR (class-id label maps of the test images) for the paper's mIoU"}},
      {"vgg", {in.vgg, "--vgg-weights FILE (torchvision vgg16 for DCD, vgg19 for GauGAN) for the release's perceptual terms"}}};
  for (const auto& need : r.requires_full) {
    const auto& [value, text] = flags.at(need);
    if (value.empty()) throw UsageError(who + " at --scale full needs " + text);
  }
}

}  // namespace

std::vector<ResolvedStage> resolve_stages(const Recipe& r, const ReproduceInputs& in) {
  check_inputs(r, in);
  const Context c = make_context(r, in);
  const bool tiny = in.scale == "tiny";
  std::vector<ResolvedStage> out;
  for (const auto& s : r.stages) {
    ResolvedStage rs{s.name, s.command, {}, (fs::path(in.out) / s.name).string(), ""};
    std::string why;
    if (!holds(c, s.when, &why)) rs.skipped = why;
    const bool lenient = !rs.skipped.empty();
    for (const auto& a : s.args) {
      const ArgValue& v = tiny ? a.tiny : a.full;
      if (!v.present || !holds(c, a.when, nullptr)) continue;
      rs.args.push_back(a.flag);
      for (const auto& w : v.words) rs.args.push_back(substitute(c, w, s.name, a.flag, lenient));
    }
    out.push_back(std::move(rs));
  }
  return out;
}

std::string shell_join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    const bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || std::string("_./:=,+-@%").find(ch) != std::string::npos;
    });
    if (!out.empty()) out += ' ';
    if (plain) {
      out += w;
    } else {
      out += '\'';
      for (char ch : w) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
      out += '\'';
    }
  }
  return out;
}

}  // namespace ganlite::report

namespace ganlite::report {

namespace {

// The measured value at `figure.pointer` in its stage's output, or null with the reason.
json measured_value(const MeasuredFigure& figure, const std::vector<StageOutcome>& outcomes) {
  json m{{"metric", figure.metric}, {"label", figure.label}, {"stage", figure.stage}, {"value", nullptr}};
  const auto it = std::find_if(outcomes.begin(), outcomes.end(),
                               [&](const StageOutcome& o) { return o.stage.name == figure.stage; });
  if (it == outcomes.end()) {
    m["why_not"] = "stage '" + figure.stage + "' did not run";
  } else if (it->status == "skipped") {
    m["why_not"] = "stage '" + figure.stage + "' skipped: " + it->stage.skipped;
  } else {
    const json result = json::parse(it->result_json, nullptr, false);
    const json::json_pointer pointer(figure.pointer);
    if (result.is_discarded() || !result.contains(pointer) || !result.at(pointer).is_number()) {
      m["why_not"] = "stage '" + figure.stage + "' printed no number at " + figure.pointer;
    } else {
      m["value"] = result.at(pointer);
    }
  }
  return m;
}

std::string number_text(const json& v) {
  if (!v.is_number()) return "-";
  std::ostringstream s;
  s << v.get<double>();
  return s.str();
}

// Which checkpoint the later stages used: the select-checkpoint stage's choice and why (null
// when the recipe has no such stage).
json checkpoint_choice(const std::vector<StageOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    if (o.stage.command != "select-checkpoint") continue;
    json c{{"stage", o.stage.name}};
    if (o.status == "skipped") {
      c["selected"] = nullptr;
      c["reason"] = "stage '" + o.stage.name + "' skipped: " + o.stage.skipped;
      return c;
    }
    const json result = json::parse(o.result_json, nullptr, false);
    if (result.is_discarded() || !result.contains("selected")) {
      c["selected"] = nullptr;
      c["reason"] = "stage '" + o.stage.name + "' printed no selection";
      return c;
    }
    for (const char* key : {"selected", "reason", "metric", "rule", "candidates"}) {
      if (result.contains(key)) c[key] = result.at(key);
    }
    return c;
  }
  return nullptr;
}

}  // namespace

json reproduce_report_json(const Recipe& r, const ReproduceInputs& in, const std::vector<StageOutcome>& outcomes) {
  json stages = json::array();
  for (const auto& o : outcomes) {
    json s{{"name", o.stage.name}, {"command", o.stage.command}, {"status", o.status},
           {"command_line", shell_join(o.argv)}, {"seconds", o.seconds}};
    if (o.status == "skipped") s["why"] = o.stage.skipped;
    stages.push_back(s);
  }
  json figures = json::array();
  std::set<std::string> metrics;
  for (const auto& p : r.published) metrics.insert(p.metric);
  for (const auto& m : r.measured) metrics.insert(m.metric);
  for (const auto& metric : metrics) {
    json f{{"metric", metric}, {"published", json::array()}, {"measured", json::array()}};
    for (const auto& p : r.published) {
      if (p.metric != metric) continue;
      json pj{{"value", p.value ? json(*p.value) : json(nullptr)}, {"source", p.source}};
      if (!p.note.empty()) pj["note"] = p.note;
      f["published"].push_back(pj);
    }
    for (const auto& m : r.measured) {
      if (m.metric == metric) f["measured"].push_back(measured_value(m, outcomes));
    }
    figures.push_back(f);
  }
  json report{{"format", "ganlite-reproduce-report"},
              {"version", 1},
              {"recipe", recipe_summary_json(r)},
              {"scale", in.scale},
              {"data", in.data.empty() ? (fs::path(in.out) / "dataset").string() : in.data},
              {"out", in.out},
              {"teacher", in.teacher.empty() ? json(nullptr) : json(in.teacher)},
              {"inception", in.inception.empty() ? json(nullptr) : json(in.inception)},
              {"stages", stages},
              {"figures", figures},
              {"checkpoint", checkpoint_choice(outcomes)}};
  if (in.scale == "tiny") {
    report["caveat"] = "tiny scale: the recipe's pipeline on synthetic data with small networks and a few steps; "
                       "its figures check that every stage runs and are not comparable with the published ones";
  }
  return report;
}

std::string reproduce_report_markdown(const json& report) {
  const json& recipe = report.at("recipe");
  std::ostringstream md;
  md << "# Reproduction of `" << recipe.at("name").get<std::string>() << "`\n\n";
  md << recipe.at("paper").get<std::string>() << ". Method `" << recipe.at("method").get<std::string>() << "`, task `"
     << recipe.at("task").get<std::string>() << "`, dataset " << recipe.at("dataset").get<std::string>() << ", scale `"
     << report.at("scale").get<std::string>() << "`.\n\n";
  if (report.contains("caveat")) md << "**" << report.at("caveat").get<std::string>() << ".**\n\n";
  md << "## Figures\n\n| metric | published | source | measured |\n|---|---|---|---|\n";
  for (const auto& f : report.at("figures")) {
    std::string published, source, measured;
    for (const auto& p : f.at("published")) {
      published += (published.empty() ? "" : "; ") + number_text(p.at("value"));
      source += (source.empty() ? "" : "; ") + p.at("source").get<std::string>() +
                (p.contains("note") ? " (" + p.at("note").get<std::string>() + ")" : "");
    }
    for (const auto& m : f.at("measured")) {
      measured += (measured.empty() ? "" : "; ") + m.at("label").get<std::string>() + ": " +
                  (m.at("value").is_number() ? number_text(m.at("value")) : "not measured (" + m.at("why_not").get<std::string>() + ")");
    }
    md << "| " << f.at("metric").get<std::string>() << " | " << (published.empty() ? "-" : published) << " | "
       << (source.empty() ? "-" : source) << " | " << (measured.empty() ? "-" : measured) << " |\n";
  }
  if (report.contains("checkpoint") && report.at("checkpoint").is_object()) {
    const json& c = report.at("checkpoint");
    md << "\n## Checkpoint\n\n";
    if (c.at("selected").is_object()) {
      md << "The student measured is the **" << c.at("selected").at("label").get<std::string>() << "** checkpoint ("
         << c.at("selected").at("file").get<std::string>() << "): " << c.at("reason").get<std::string>() << ".\n";
      if (c.contains("candidates")) {
        md << "\n| checkpoint | FID | mIoU |\n|---|---|---|\n";
        for (const auto& k : c.at("candidates")) {
          md << "| " << k.at("label").get<std::string>() << " | " << number_text(k.at("fid")) << " | "
             << number_text(k.at("miou")) << " |\n";
        }
      }
    } else {
      md << "No selection: " << c.at("reason").get<std::string>() << ".\n";
    }
  }
  md << "\n## Stages\n\n| stage | status | seconds | command |\n|---|---|---|---|\n";
  for (const auto& s : report.at("stages")) {
    const std::string status = s.at("status").get<std::string>() + (s.contains("why") ? ": " + s.at("why").get<std::string>() : "");
    md << "| " << s.at("name").get<std::string>() << " | " << status << " | " << number_text(s.at("seconds")) << " | `"
       << s.at("command_line").get<std::string>() << "` |\n";
  }
  if (!recipe.at("notes").empty()) {
    md << "\n## Notes\n\n";
    for (const auto& n : recipe.at("notes")) md << "- " << n.get<std::string>() << "\n";
  }
  return md.str();
}

}  // namespace ganlite::report
