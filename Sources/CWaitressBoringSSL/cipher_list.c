// BoringSSL is linked into the extension by swift-nio-ssl (its CNIOBoringSSL target), with
// every symbol prefixed CNIOBoringSSL_; that target is not a product another package can
// import, so the few functions used here are declared with their prefixed names. Their
// signatures are those of BoringSSL's ssl.h, err.h and stack.h.
#include "CWaitressBoringSSL.h"

#include <stdint.h>
#include <string.h>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
typedef struct ssl_cipher_st SSL_CIPHER;
typedef struct stack_st OPENSSL_STACK;

extern const SSL_METHOD *CNIOBoringSSL_TLS_method(void);
extern SSL_CTX *CNIOBoringSSL_SSL_CTX_new(const SSL_METHOD *method);
extern void CNIOBoringSSL_SSL_CTX_free(SSL_CTX *ctx);
extern int CNIOBoringSSL_SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *str);
extern OPENSSL_STACK *CNIOBoringSSL_SSL_CTX_get_ciphers(const SSL_CTX *ctx);
extern size_t CNIOBoringSSL_OPENSSL_sk_num(const OPENSSL_STACK *sk);
extern void *CNIOBoringSSL_OPENSSL_sk_value(const OPENSSL_STACK *sk, size_t i);
extern const char *CNIOBoringSSL_SSL_CIPHER_get_name(const SSL_CIPHER *cipher);
extern const SSL_CIPHER *CNIOBoringSSL_SSL_get_cipher_by_value(uint16_t value);
extern uint32_t CNIOBoringSSL_ERR_get_error(void);
extern const char *CNIOBoringSSL_ERR_reason_error_string(uint32_t packed_error);
extern void CNIOBoringSSL_ERR_clear_error(void);

static void copy_text(char *out, size_t size, const char *text) {
    if (size == 0) return;
    size_t n = strlen(text);
    if (n >= size) n = size - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

int waitress_tls_cipher_list(const char *list, char *names, size_t names_size, char *reason,
                             size_t reason_size) {
    copy_text(names, names_size, "");
    copy_text(reason, reason_size, "");
    SSL_CTX *ctx = CNIOBoringSSL_SSL_CTX_new(CNIOBoringSSL_TLS_method());
    if (ctx == NULL) {
        copy_text(reason, reason_size, "cannot create a TLS context");
        return 0;
    }
    CNIOBoringSSL_ERR_clear_error();
    int count = 0;
    if (CNIOBoringSSL_SSL_CTX_set_cipher_list(ctx, list) != 1) {
        const char *why = NULL;
        uint32_t error = CNIOBoringSSL_ERR_get_error();
        if (error != 0) why = CNIOBoringSSL_ERR_reason_error_string(error);
        copy_text(reason, reason_size, why != NULL ? why : "refused");
    } else {
        OPENSSL_STACK *ciphers = CNIOBoringSSL_SSL_CTX_get_ciphers(ctx);
        size_t total = ciphers == NULL ? 0 : CNIOBoringSSL_OPENSSL_sk_num(ciphers);
        size_t used = 0;
        for (size_t i = 0; i < total; i++) {
            const char *name = CNIOBoringSSL_SSL_CIPHER_get_name(CNIOBoringSSL_OPENSSL_sk_value(ciphers, i));
            size_t n = strlen(name);
            if (names_size > 0 && used + n + 2 <= names_size) {
                if (used > 0) names[used++] = ':';
                memcpy(names + used, name, n);
                used += n;
                names[used] = '\0';
            }
            count++;
        }
        if (count == 0) copy_text(reason, reason_size, "NO_CIPHER_MATCH");
    }
    CNIOBoringSSL_ERR_clear_error();
    CNIOBoringSSL_SSL_CTX_free(ctx);
    return count;
}

const char *waitress_tls_cipher_name(unsigned short value) {
    const SSL_CIPHER *cipher = CNIOBoringSSL_SSL_get_cipher_by_value(value);
    return cipher == NULL ? NULL : CNIOBoringSSL_SSL_CIPHER_get_name(cipher);
}

// --- A new connection's cost (docs/tls.md, "Cost of a new connection") ---

typedef struct ssl_st SSL;

// BoringSSL's SSL_CLIENT_HELLO (ssl.h, struct ssl_early_callback_ctx), field for field.
typedef struct {
    SSL *ssl;
    const uint8_t *client_hello;
    size_t client_hello_len;
    uint16_t version;
    const uint8_t *random;
    size_t random_len;
    const uint8_t *session_id;
    size_t session_id_len;
    const uint8_t *dtls_cookie;
    size_t dtls_cookie_len;
    const uint8_t *cipher_suites;
    size_t cipher_suites_len;
    const uint8_t *compression_methods;
    size_t compression_methods_len;
    const uint8_t *extensions;
    size_t extensions_len;
} WaitressClientHello;

extern int CNIOBoringSSL_SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t num_tickets);
extern int CNIOBoringSSL_SSL_CTX_set1_tls13_ciphers(SSL_CTX *ctx, const uint16_t *cipher_ids,
                                                    const uint32_t *flags, size_t num_cipher_ids);
extern int CNIOBoringSSL_SSL_set1_tls13_ciphers(SSL *ssl, const uint16_t *cipher_ids, const uint32_t *flags,
                                                size_t num_cipher_ids);
extern int CNIOBoringSSL_EVP_has_aes_hardware(void);
extern void CNIOBoringSSL_SSL_CTX_set_select_certificate_cb(SSL_CTX *ctx,
                                                            int (*cb)(const WaitressClientHello *));

enum {
    TLS_AES_128_GCM_SHA256 = 0x1301,
    TLS_AES_256_GCM_SHA384 = 0x1302,
    TLS_CHACHA20_POLY1305_SHA256 = 0x1303,
};

// The first TLS 1.3 suite in the client's list is ChaCha20-Poly1305: a client without AES
// hardware says so this way (as Go's crypto/tls reads it); it then gets BoringSSL's own order
// for this connection (its preference among all three).
static int prefer_client_chacha(const WaitressClientHello *hello) {
    for (size_t i = 0; i + 1 < hello->cipher_suites_len; i += 2) {
        uint16_t suite = (uint16_t)(hello->cipher_suites[i] << 8 | hello->cipher_suites[i + 1]);
        if (suite == TLS_AES_128_GCM_SHA256 || suite == TLS_AES_256_GCM_SHA384) break;
        if (suite == TLS_CHACHA20_POLY1305_SHA256) {
            CNIOBoringSSL_SSL_set1_tls13_ciphers(hello->ssl, NULL, NULL, 0);
            break;
        }
    }
    return 1;  // ssl_select_cert_success
}

int waitress_tls_tune_server_context(void *context, unsigned tickets) {
    SSL_CTX *ctx = context;
    CNIOBoringSSL_SSL_CTX_set_num_tickets(ctx, tickets);
    if (!CNIOBoringSSL_EVP_has_aes_hardware()) return 1;  // BoringSSL's order: ChaCha20 first
    static const uint16_t order[] = {TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
                                     TLS_CHACHA20_POLY1305_SHA256};
    if (CNIOBoringSSL_SSL_CTX_set1_tls13_ciphers(ctx, order, NULL, 3) != 1) {
        CNIOBoringSSL_ERR_clear_error();
        return 0;
    }
    CNIOBoringSSL_SSL_CTX_set_select_certificate_cb(ctx, prefer_client_chacha);
    return 1;
}
