#include "ganlite/nn/discriminator_registry.h"

#include "ganlite/util/registry.h"

// The registered kinds, in --help order. Each unit defines `DiscriminatorKind <x>_discriminator_kind()`.
// The library is a static archive: an object file that registered itself from a static
// initialiser but that nothing references would be dropped by the linker, so the list is
// explicit. A new kind adds one X(name) here.
#define GANLITE_DISCRIMINATOR_KINDS(X) X(basic) X(n_layers) X(pixel) X(multiscale)

namespace ganlite::nn {

#define GANLITE_DECLARE_DISCRIMINATOR_KIND(name) DiscriminatorKind name##_discriminator_kind();
GANLITE_DISCRIMINATOR_KINDS(GANLITE_DECLARE_DISCRIMINATOR_KIND)
#undef GANLITE_DECLARE_DISCRIMINATOR_KIND

namespace {

std::vector<DiscriminatorKind> build_registry() {
#define GANLITE_LIST_DISCRIMINATOR_KIND(name) name##_discriminator_kind(),
  std::vector<DiscriminatorKind> kinds{GANLITE_DISCRIMINATOR_KINDS(GANLITE_LIST_DISCRIMINATOR_KIND)};
#undef GANLITE_LIST_DISCRIMINATOR_KIND
  check_unique_names(kinds, "discriminator kind");
  for (const auto& k : kinds) {
    if (!k.build || !k.conv_weight_count || k.file_arch.empty()) {
      throw Error("discriminator kind '" + k.name + "' lacks a builder, a weight count or a file arch");
    }
  }
  return kinds;
}

}  // namespace

const std::vector<DiscriminatorKind>& discriminator_kinds() {
  static const std::vector<DiscriminatorKind> kinds = build_registry();
  return kinds;
}

const std::vector<std::string>& discriminator_kind_names() {
  static const std::vector<std::string> names = entry_names(discriminator_kinds());
  return names;
}

const DiscriminatorKind* find_discriminator_kind(const std::string& name) {
  return find_entry(discriminator_kinds(), name);
}

const DiscriminatorKind& discriminator_kind(const std::string& name) {
  return entry_or_throw(discriminator_kinds(), name, "discriminator");
}

const DiscriminatorKind& discriminator_kind_for_file(const std::string& file_arch, int n_layers,
                                                     const std::string& preferred, const std::string& file) {
  const auto reads = [&](const DiscriminatorKind& k) {
    return k.file_arch == file_arch && (k.fixed_n_layers == 0 || k.fixed_n_layers == n_layers);
  };
  const auto* p = find_discriminator_kind(preferred);
  if (p != nullptr && reads(*p)) return *p;
  for (const auto& k : discriminator_kinds()) {
    if (reads(k)) return k;
  }
  throw UsageError("'" + file + "': metadata 'arch' is '" + file_arch + "' with " + std::to_string(n_layers) +
                   " layers, which no discriminator kind reads (kinds: " + join_names(discriminator_kind_names(), ", ") +
                   ")");
}

}  // namespace ganlite::nn
