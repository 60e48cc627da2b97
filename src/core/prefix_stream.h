#pragma once
// PrefixStream: a Stream that returns bytes already read from its inner stream (e.g. the bytes that
// followed a PROXY header) before reading the inner stream again. Writes go straight through.
#include <string>

#include <ugate/stream.h>

namespace ugate {

class PrefixStream final : public Stream, private StreamCallbacks {
 public:
  PrefixStream(StreamPtr inner, std::string prefix);
  ~PrefixStream() override;

  // ugate::Stream
  void setCallbacks(StreamCallbacks* cb) override;
  IoResult read(uint8_t* buf, size_t len) override;
  IoResult write(const uint8_t* buf, size_t len) override;
  void shutdownWrite() override { inner_->shutdownWrite(); }
  void close(bool abort) override { inner_->close(abort); }
  int spliceFd() const override { return off_ < prefix_.size() ? -1 : inner_->spliceFd(); }
  bool readNeedsCopy() const override { return inner_->readNeedsCopy(); }

 private:
  // ugate::StreamCallbacks (the inner stream)
  void onStreamReadable(Stream&) override;
  void onStreamWritable(Stream&) override;

  StreamPtr inner_;
  std::string prefix_;
  size_t off_{0};
  StreamCallbacks* cb_{nullptr};
};

}  // namespace ugate
