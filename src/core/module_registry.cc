#include <ugate/module.h>

#include <ugate/listener.h>

namespace ugate {

namespace {

class KindsOnlyModule final : public Module {
 public:
  KindsOnlyModule(std::string name, void (*reg)(ListenerKindRegistry&)) : name_(std::move(name)), reg_(reg) {}
  std::string_view name() const override { return name_; }
  void registerKinds(ListenerKindRegistry& kinds) override { reg_(kinds); }

 private:
  std::string name_;
  void (*reg_)(ListenerKindRegistry&);
};

}  // namespace

ModulePtr kindsOnlyModule(std::string name, void (*registerKinds)(ListenerKindRegistry&)) {
  return std::make_unique<KindsOnlyModule>(std::move(name), registerKinds);
}

bool ModuleRegistry::add(ModulePtr m, ListenerKindRegistry& kinds) {
  if (!m || find(m->name()) != nullptr) return false;
  m->registerKinds(kinds);
  modules_.push_back(std::move(m));
  return true;
}

Module* ModuleRegistry::find(std::string_view name) const {
  for (const auto& m : modules_) {
    if (m->name() == name) return m.get();
  }
  return nullptr;
}

ModuleRegistry& modules() {
  static ModuleRegistry r;
  return r;
}

}  // namespace ugate
