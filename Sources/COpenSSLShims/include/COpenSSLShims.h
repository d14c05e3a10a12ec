// C functions wrapping OpenSSL function-like macros and inline helpers that Swift cannot import.
// Every name is `vpcep_` followed by the OpenSSL name it wraps (or what it does).
#ifndef VPCEP_COPENSSL_SHIMS_H
#define VPCEP_COPENSSL_SHIMS_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/bio.h>

// SSL_CTX / SSL control macros.
int vpcep_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
int vpcep_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
long vpcep_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
int vpcep_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
// The key exchange groups offered (client) or accepted (server), e.g. "X25519:P-256"; 1 on success.
int vpcep_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);
// Whether the context's certificate has an explicit chain (possibly empty). Without one, OpenSSL
// builds the chain from the trust store on every handshake.
int vpcep_SSL_CTX_has_chain(SSL_CTX *ctx);
// Builds the certificate's chain once, from the trust store: intermediates it finds, no root
// (SSL_BUILD_CHAIN_FLAG_NO_ROOT), and what it can when the issuer is unknown; when that is no
// certificate at all, turns automatic chain building off instead (SSL_MODE_NO_AUTO_CHAIN).
// Returns 1 or 2 on success, 0 on failure (e.g. a CA below the security level).
int vpcep_SSL_CTX_build_chain_without_root(SSL_CTX *ctx);

// Client session cache: OpenSSL hands each new session (TLS 1.3 ticket) to a callback instead of
// keeping it in its internal store.
long vpcep_SSL_CTX_set_session_cache_mode_client_external(SSL_CTX *ctx);

// A BIO for an SSL driven by a channel, used as both its read and its write BIO. Reads come from
// bytes lent for the duration of one SSL call (`set_input` before it, `input_remaining` and
// `set_input(NULL, 0)` after it); nothing received is copied or kept. Writes are appended to a
// buffer the BIO owns, which `clear_output` frees once the caller has taken the bytes: an idle
// connection keeps no buffer. An empty input reads as "retry", never as end of file.
// Returns NULL when out of memory.
BIO *vpcep_channel_bio_new(void);
void vpcep_channel_bio_set_input(BIO *bio, const void *bytes, size_t length);
size_t vpcep_channel_bio_input_remaining(const BIO *bio);
// The bytes written so far (NULL when none), valid until the next write or clear_output.
const unsigned char *vpcep_channel_bio_output(const BIO *bio, size_t *length);
void vpcep_channel_bio_clear_output(BIO *bio);

// Error codes (static inline functions in OpenSSL 3 headers).
int vpcep_ERR_GET_LIB(unsigned long code);
int vpcep_ERR_GET_REASON(unsigned long code);

// Writes `name` as an RFC 2253 string (UTF-8, not escaped to \XX) into `bio`; returns the byte count or -1.
int vpcep_X509_NAME_print_rfc2253(BIO *bio, const X509_NAME *name);

// subjectAltName access. The GENERAL_NAMES result must be released with vpcep_GENERAL_NAMES_free.
GENERAL_NAMES *vpcep_X509_get_subject_alt_names(const X509 *certificate);
int vpcep_GENERAL_NAMES_count(const GENERAL_NAMES *names);
// If entry `index` is a URI, points `*data`/`*length` at its bytes (owned by `names`) and returns 1; else 0.
int vpcep_GENERAL_NAMES_get_uri(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length);
void vpcep_GENERAL_NAMES_free(GENERAL_NAMES *names);

#endif
