#include "ganlite/compress/method_registry.h"

#include <set>

#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_loss.h"
#include "ganlite/util/registry.h"

// The registered methods, in --help order. Each unit defines `DistillMethod <x>_distill_method()`.
// The library is a static archive: an object file that registered itself from a static
// initialiser but that nothing references would be dropped by the linker, so the list is
// explicit. A new method adds one X(name) here.
#define GANLITE_DISTILL_METHODS(X) X(ka) X(mse) X(wkd) X(dcd) X(at)

namespace ganlite::compress {

#define GANLITE_DECLARE_DISTILL_METHOD(name) DistillMethod name##_distill_method();
GANLITE_DISTILL_METHODS(GANLITE_DECLARE_DISTILL_METHOD)
#undef GANLITE_DECLARE_DISTILL_METHOD

namespace {

std::vector<DistillMethod> build_registry() {
#define GANLITE_LIST_DISTILL_METHOD(name) name##_distill_method(),
  std::vector<DistillMethod> methods{GANLITE_DISTILL_METHODS(GANLITE_LIST_DISTILL_METHOD)};
#undef GANLITE_LIST_DISTILL_METHOD
  // Option keys share the distill section of config.json: a clash would make one overwrite another.
  check_unique_names(methods, "distillation method");
  std::set<std::string> keys;
  for (const auto& m : methods) {
    if (!m.make_term || !m.default_weight) {
      throw Error("distillation method '" + m.name + "' lacks a factory or a default weight");
    }
    for (const auto& f : m.options) {
      if (!keys.insert(f.key).second) throw Error("distillation option '" + f.key + "' is registered twice");
    }
  }
  return methods;
}

}  // namespace

const OptionValue& OptionValues::at(const std::string& key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) throw Error("no distillation option '" + key + "' in this method");
  return it->second;
}

int64_t OptionValues::integer(const std::string& key) const {
  const auto* v = std::get_if<int64_t>(&at(key));
  if (!v) throw Error("distillation option '" + key + "' is not an integer");
  return *v;
}

double OptionValues::number(const std::string& key) const {
  const auto* v = std::get_if<double>(&at(key));
  if (!v) throw Error("distillation option '" + key + "' is not a number");
  return *v;
}

const std::string& OptionValues::text(const std::string& key) const {
  const auto* v = std::get_if<std::string>(&at(key));
  if (!v) throw Error("distillation option '" + key + "' is not a text");
  return *v;
}

OptionValues DistillMethod::defaults() const {
  OptionValues v;
  for (const auto& f : options) v.set(f.key, f.default_value);
  return v;
}

const OptionField* DistillMethod::field(const std::string& key) const {
  for (const auto& f : options) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

const std::vector<DistillMethod>& distill_methods() {
  static const std::vector<DistillMethod> methods = build_registry();
  return methods;
}

std::vector<std::string> distill_method_names() { return entry_names(distill_methods()); }

const DistillMethod* find_distill_method(const std::string& name) { return find_entry(distill_methods(), name); }

UpdateOrder run_update_order(const std::vector<std::string>& methods) {
  if (methods.empty()) return UpdateOrder::kDiscriminatorFirst;
  for (const auto& name : methods) {
    if (distill_method(name).update_order != UpdateOrder::kSimultaneous) return UpdateOrder::kDiscriminatorFirst;
  }
  return UpdateOrder::kSimultaneous;
}

const DistillMethod& distill_method(const std::string& name) {
  return entry_or_throw(distill_methods(), name, "distillation method");
}

const DistillMethod* method_of_option(const std::string& key) {
  for (const auto& m : distill_methods()) {
    if (m.field(key)) return &m;
  }
  return nullptr;
}

std::shared_ptr<DistillTerm> make_distill_term(const std::string& method, const DistillContext& context) {
  const auto& m = distill_method(method);
  return m.make_term(context, context.config ? context.config->options(m.name) : m.defaults());
}

}  // namespace ganlite::compress
