// Distillation methods as registered units. Each method (ka_method.cpp, mse_method.cpp, ...) is
// one self-contained file that describes itself in a DistillMethod: its name, default weight,
// smallest batch, its options as one field table (which gives the CLI flags of `ganlite
// distill`, the keys of the run's config.json, their bounds, defaults and validation) and a
// factory for its term. Nothing outside a method's unit names it.
//
// A new method: one file defining `DistillMethod <name>_distill_method()` and one line in
// GANLITE_DISTILL_METHODS (method_registry.cpp). docs/architecture.md, "Extending ganlite".
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ganlite::train {
struct TrainConfig;
}

namespace ganlite::compress {

struct DistillConfig;
struct DistillContext;
class DistillTerm;

enum class OptionType { Integer, Number, Text };

// When the student's discriminator steps relative to the generator loss (docs/fidelity.md, "Step
// order"). kDiscriminatorFirst: D's backward and step, then G's loss against the updated D (CAT's
// distillers, pix2pix / CycleGAN). kSimultaneous: D's backward, G's backward against the same,
// not yet updated D, then D's and G's steps (GAN Compression, distillers/resnet_distiller.py,
// ResnetDistiller.optimize_parameters).
enum class UpdateOrder { kDiscriminatorFirst, kSimultaneous };

using OptionValue = std::variant<int64_t, double, std::string>;

// One option of a method: a JSON key of the run's distill section and a CLI flag.
struct OptionField {
  std::string key;                   // JSON key, unique over all methods ("wkd_levels")
  std::string flag;                  // CLI flag, "--wkd-levels"
  OptionType type = OptionType::Number;
  OptionValue default_value;         // of `type`
  double min = 0, max = 0;           // Integer / Number: inclusive bounds (JSON and validation)
  std::vector<std::string> choices;  // Text: allowed values; empty: any (a file name)
  std::string help;
  bool only_with_method = false;     // a non-default value is refused unless the method is used
  bool online_student = false;       // ... or unless the run has an online teacher, whose student loss reads it
};

// The values of one method's options, typed by its field table. Getters throw Error for a key
// the method does not have or a value of another type.
class OptionValues {
 public:
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  const std::string& text(const std::string& key) const;
  void set_integer(const std::string& key, int64_t v) { values_[key] = v; }
  void set_number(const std::string& key, double v) { values_[key] = v; }
  void set_text(const std::string& key, std::string v) { values_[key] = std::move(v); }
  const std::map<std::string, OptionValue>& values() const { return values_; }
  void set(const std::string& key, OptionValue v) { values_[key] = std::move(v); }
  bool operator==(const OptionValues& o) const { return values_ == o.values_; }
  bool operator!=(const OptionValues& o) const { return !(*this == o); }

 private:
  const OptionValue& at(const std::string& key) const;
  std::map<std::string, OptionValue> values_;
};

struct DistillMethod {
  std::string name;         // "--method" part and log name (G_<name>)
  std::string description;  // one line for --help
  std::string weight_flags; // CLI flag(s) of its weight, "--lambda-ka" or "--wkd-weight,--lambda-wkd"
  std::string weight_help;
  // The weight without a weight flag; `follows_lambda_distill`: --lambda-distill overrides it.
  std::function<double(const std::string& task)> default_weight;
  bool follows_lambda_distill = false;
  // > 0: the cyclegan lambda_recon default when this method runs alone (GAN Compression's MSE
  // recipe: 10 instead of 5).
  double cyclegan_recon_weight_alone = 0;
  int min_batch_size = 1;
  std::string min_batch_reason;  // why, for the message refusing a smaller batch
  // The order of the release the method comes from. A run takes kSimultaneous only when every
  // one of its methods declares it (a mix follows CAT); an online teacher's run has no student D.
  UpdateOrder update_order = UpdateOrder::kDiscriminatorFirst;
  std::vector<OptionField> options;

  // Optional hooks. `resolve`: fills defaults that depend on the common settings (idempotent).
  std::function<void(OptionValues&, const DistillConfig&)> resolve;
  // Fills defaults that depend on the run (its --ndf, files named by the options); called once
  // when a run's config is made.
  std::function<void(OptionValues&, const train::TrainConfig&)> adopt_run_settings;
  // Discriminator files the method restores, (path, flag): the run's D norm follows them.
  std::function<std::vector<std::pair<std::string, std::string>>(const OptionValues&)> restored_discriminators;
  // Called for every method of a run, in order, before any term is built: builds networks the
  // term owns but the run's seed must initialise first (DCD's teacher D).
  std::function<void(DistillContext&, const OptionValues&)> prepare;
  // Builds the term on context.device (seed torch first for a reproducible init).
  std::function<std::shared_ptr<DistillTerm>(const DistillContext&, const OptionValues&)> make_term;

  OptionValues defaults() const;
  const OptionField* field(const std::string& key) const;
};

// Every registered method, in GANLITE_DISTILL_METHODS order.
const std::vector<DistillMethod>& distill_methods();
std::vector<std::string> distill_method_names();
// nullptr when no method has this name.
const DistillMethod* find_distill_method(const std::string& name);
// The order a run with these methods steps in (DistillMethod::update_order): kSimultaneous when
// every method declares it, else kDiscriminatorFirst (also for none).
UpdateOrder run_update_order(const std::vector<std::string>& methods);
// UsageError listing the valid names for an unknown one.
const DistillMethod& distill_method(const std::string& name);
// The method owning the option `key`, nullptr if none.
const DistillMethod* method_of_option(const std::string& key);

// Builds the term of `method` (registry lookup; UsageError for an unknown method). Uses the
// method's options from context.config when set, else its defaults.
std::shared_ptr<DistillTerm> make_distill_term(const std::string& method, const DistillContext& context);

}  // namespace ganlite::compress
