// AssociationDirectory (ugate/association_directory.h): immutable snapshots, one publisher at a time.
#include <ugate/association_directory.h>

#include <algorithm>

namespace ugate {

AssociationDirectory::AssociationDirectory() : snap_(std::make_shared<const std::vector<AssociatedNode>>()) {}

void AssociationDirectory::publish(std::vector<AssociatedNode> nodes) {
  std::sort(nodes.begin(), nodes.end(), [](const AssociatedNode& a, const AssociatedNode& b) { return a.id < b.id; });
  std::lock_guard<std::mutex> l(writeMu_);
  if (*snap_.load(std::memory_order_acquire) == nodes) return;
  snap_.store(std::make_shared<const std::vector<AssociatedNode>>(std::move(nodes)), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::vector<AssociatedNode> AssociationDirectory::list() const { return *snap_.load(std::memory_order_acquire); }

AssociationDirectory& associationDirectory() {
  static AssociationDirectory d;
  return d;
}

}  // namespace ugate
