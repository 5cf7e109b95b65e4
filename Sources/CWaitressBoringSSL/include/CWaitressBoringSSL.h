#ifndef CWAITRESS_BORINGSSL_H
#define CWAITRESS_BORINGSSL_H

#include <stddef.h>

/// Checks an OpenSSL cipher string (`ssl_ciphers`) with BoringSSL's own parser, on a scratch
/// context, before swift-nio-ssl is given it (swift-nio-ssl stops the process on a string
/// BoringSSL refuses). Returns how many TLS 1.2 suites the string selects and writes their
/// OpenSSL names, joined by ':', into `names` (truncated to `names_size`); on a string
/// BoringSSL refuses, returns 0 and writes BoringSSL's reason (e.g. NO_CIPHER_MATCH,
/// INVALID_COMMAND) into `reason`.
int waitress_tls_cipher_list(const char *list, char *names, size_t names_size, char *reason,
                             size_t reason_size);

/// The OpenSSL name of the cipher suite with this IANA value (from a ServerHello), or NULL.
const char *waitress_tls_cipher_name(unsigned short value);

/// Sets what a new TLS 1.3 connection costs on a server's SSL_CTX (docs/tls.md, "Cost of a new
/// connection"), before any connection is made from it: `tickets` session tickets after each
/// full handshake (BoringSSL's default is 2), and, on a machine with AES hardware, the server's
/// order AES-128-GCM > AES-256-GCM > ChaCha20-Poly1305 (SHA-256's key schedule, which SHA
/// instructions run, instead of SHA-384's), except for a client whose first TLS 1.3 suite is
/// ChaCha20, which keeps its own order. Returns 1, or 0 if BoringSSL refused the order.
int waitress_tls_tune_server_context(void *ssl_ctx, unsigned tickets);

#endif
