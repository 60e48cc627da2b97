// MuxTransports (ugate/mux.h): the transports of multiplexed node-to-node connections, by name.
#include <ugate/mux.h>

namespace ugate {

void MuxTransports::add(std::shared_ptr<MuxTransport> t) {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& old : transports_) {
    if (old->name() == t->name()) {
      old = std::move(t);
      return;
    }
  }
  transports_.push_back(std::move(t));
}

MuxTransport* MuxTransports::find(std::string_view name) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& t : transports_) {
    if (t->name() == name) return t.get();
  }
  return nullptr;
}

void MuxTransports::setAcceptor(MuxAcceptor a) {
  std::lock_guard<std::mutex> l(mu_);
  acceptor_ = a ? std::make_shared<const MuxAcceptor>(std::move(a)) : nullptr;
}

bool MuxTransports::accept(WorkerContext& w, const std::string& listener, MuxConnectionPtr& c) const {
  std::shared_ptr<const MuxAcceptor> a;
  {
    std::lock_guard<std::mutex> l(mu_);
    a = acceptor_;
  }
  if (!a) return false;
  (*a)(w, listener, std::move(c));
  return true;
}

MuxTransports& muxTransports() {
  static MuxTransports t;
  return t;
}

}  // namespace ugate
