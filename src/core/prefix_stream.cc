#include "core/prefix_stream.h"

#include <algorithm>
#include <cstring>

namespace ugate {

PrefixStream::PrefixStream(StreamPtr inner, std::string prefix)
    : inner_(std::move(inner)), prefix_(std::move(prefix)) {
  readReady_ = !prefix_.empty() || inner_->readReady();
  writeReady_ = inner_->writeReady();
}

PrefixStream::~PrefixStream() { inner_->setCallbacks(nullptr); }

void PrefixStream::setCallbacks(StreamCallbacks* cb) {
  cb_ = cb;
  inner_->setCallbacks(cb ? this : nullptr);
}

IoResult PrefixStream::read(uint8_t* buf, size_t len) {
  if (off_ < prefix_.size()) {
    size_t n = std::min(len, prefix_.size() - off_);
    memcpy(buf, prefix_.data() + off_, n);
    off_ += n;
    if (off_ == prefix_.size()) {
      std::string().swap(prefix_);  // the prefix is spent: free it
      off_ = 0;
    }
    return IoResult{static_cast<int64_t>(n), 0};
  }
  IoResult r = inner_->read(buf, len);
  readReady_ = inner_->readReady();
  return r;
}

IoResult PrefixStream::write(const uint8_t* buf, size_t len) {
  IoResult r = inner_->write(buf, len);
  writeReady_ = inner_->writeReady();
  return r;
}

void PrefixStream::onStreamReadable(Stream&) {
  readReady_ = true;
  if (cb_) cb_->onStreamReadable(*this);
}

void PrefixStream::onStreamWritable(Stream&) {
  writeReady_ = true;
  if (cb_) cb_->onStreamWritable(*this);
}

}  // namespace ugate
