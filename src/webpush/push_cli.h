#pragma once
// `ugated push`: an application server and a subscriber for people and scripts (issue 18 §3), on the
// same crypto and HTTP code as the push service:
//   ugated push vapid-keys --out FILE
//   ugated push subscribe --server URL (--ca FILE | --peer-id NODEID | --insecure)
//                         [--application-server-key KEY] --state FILE
//   ugated push listen --state FILE [--count N]
//   ugated push send --subscription FILE --vapid-key FILE --subject mailto:... [--ttl S]
//                    [--urgency U] [--topic T] (--ca FILE | --peer-id NODEID | --insecure)
// HTTPS/1.1 only, one connection per request, on a private reactor (src/auth TLS, src/http codec).

namespace ugate::webpush {

/** runPushCommand runs `ugated push ...` (argv[0] is "push"); returns the process exit status. */
int runPushCommand(int argc, char** argv);

}  // namespace ugate::webpush
