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
