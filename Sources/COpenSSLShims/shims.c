#include "COpenSSLShims.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int vpcep_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

int vpcep_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

int vpcep_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

long vpcep_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

int vpcep_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

int vpcep_SSL_CTX_has_chain(SSL_CTX *ctx) {
    STACK_OF(X509) *chain = NULL;
    return SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain != NULL;
}

int vpcep_SSL_CTX_build_chain_without_root(SSL_CTX *ctx) {
    int built = (int)SSL_CTX_build_cert_chain(
        ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR | SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
    STACK_OF(X509) *chain = NULL;
    if (built > 0 && SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain != NULL && sk_X509_num(chain) == 0) {
        // Nothing but the leaf: no chain at all, and no building per handshake either. (An empty
        // chain would be copied into every SSL.)
        SSL_CTX_clear_chain_certs(ctx);
        SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    }
    return built;
}

long vpcep_SSL_CTX_set_session_cache_mode_client_external(SSL_CTX *ctx) {
    return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
}

int vpcep_ERR_GET_LIB(unsigned long code) {
    return ERR_GET_LIB(code);
}

int vpcep_ERR_GET_REASON(unsigned long code) {
    return ERR_GET_REASON(code);
}

int vpcep_X509_NAME_print_rfc2253(BIO *bio, const X509_NAME *name) {
    return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
}

GENERAL_NAMES *vpcep_X509_get_subject_alt_names(const X509 *certificate) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
}

int vpcep_GENERAL_NAMES_count(const GENERAL_NAMES *names) {
    return names == NULL ? 0 : sk_GENERAL_NAME_num(names);
}

int vpcep_GENERAL_NAMES_get_uri(const GENERAL_NAMES *names, int index, const unsigned char **data, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL || name->type != GEN_URI || name->d.uniformResourceIdentifier == NULL) {
        return 0;
    }
    *data = ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
    *length = ASN1_STRING_length(name->d.uniformResourceIdentifier);
    return 1;
}

void vpcep_GENERAL_NAMES_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

// MARK: Channel BIO

typedef struct {
    const unsigned char *input;
    size_t inputLength;
    unsigned char *output;
    size_t outputLength;
    size_t outputCapacity;
} vpcep_channel_bio_state;

static int vpcep_channel_bio_create(BIO *bio) {
    vpcep_channel_bio_state *state = calloc(1, sizeof(vpcep_channel_bio_state));
    if (state == NULL) {
        return 0;
    }
    BIO_set_data(bio, state);
    BIO_set_init(bio, 1);
    return 1;
}

static int vpcep_channel_bio_destroy(BIO *bio) {
    vpcep_channel_bio_state *state = BIO_get_data(bio);
    if (state != NULL) {
        free(state->output);
        free(state);
        BIO_set_data(bio, NULL);
    }
    return 1;
}

static int vpcep_channel_bio_read(BIO *bio, char *data, int length) {
    vpcep_channel_bio_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (length <= 0) {
        return 0;
    }
    if (state->inputLength == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    size_t count = state->inputLength < (size_t)length ? state->inputLength : (size_t)length;
    memcpy(data, state->input, count);
    state->input += count;
    state->inputLength -= count;
    return (int)count;
}

static int vpcep_channel_bio_write(BIO *bio, const char *data, int length) {
    vpcep_channel_bio_state *state = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (length <= 0) {
        return 0;
    }
    size_t needed = state->outputLength + (size_t)length;
    if (needed > state->outputCapacity) {
        size_t capacity = state->outputCapacity == 0 ? 2048 : state->outputCapacity * 2;
        while (capacity < needed) {
            capacity *= 2;
        }
        unsigned char *grown = realloc(state->output, capacity);
        if (grown == NULL) {
            return -1;
        }
        state->output = grown;
        state->outputCapacity = capacity;
    }
    memcpy(state->output + state->outputLength, data, (size_t)length);
    state->outputLength = needed;
    return length;
}

static long vpcep_channel_bio_ctrl(BIO *bio, int command, long number, void *pointer) {
    (void)number;
    (void)pointer;
    vpcep_channel_bio_state *state = BIO_get_data(bio);
    switch (command) {
    case BIO_CTRL_PENDING:
        return (long)state->inputLength;
    case BIO_CTRL_WPENDING:
        return (long)state->outputLength;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *vpcep_channel_bio_method_instance = NULL;
static pthread_once_t vpcep_channel_bio_method_once = PTHREAD_ONCE_INIT;

static void vpcep_channel_bio_method_make(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vpcep channel");
    if (method == NULL) {
        return;
    }
    if (BIO_meth_set_create(method, vpcep_channel_bio_create) != 1
        || BIO_meth_set_destroy(method, vpcep_channel_bio_destroy) != 1
        || BIO_meth_set_read(method, vpcep_channel_bio_read) != 1
        || BIO_meth_set_write(method, vpcep_channel_bio_write) != 1
        || BIO_meth_set_ctrl(method, vpcep_channel_bio_ctrl) != 1) {
        BIO_meth_free(method);
        return;
    }
    vpcep_channel_bio_method_instance = method;  // lives as long as the process
}

BIO *vpcep_channel_bio_new(void) {
    pthread_once(&vpcep_channel_bio_method_once, vpcep_channel_bio_method_make);
    if (vpcep_channel_bio_method_instance == NULL) {
        return NULL;
    }
    return BIO_new(vpcep_channel_bio_method_instance);
}

void vpcep_channel_bio_set_input(BIO *bio, const void *bytes, size_t length) {
    vpcep_channel_bio_state *state = BIO_get_data(bio);
    state->input = bytes;
    state->inputLength = bytes == NULL ? 0 : length;
}

size_t vpcep_channel_bio_input_remaining(const BIO *bio) {
    const vpcep_channel_bio_state *state = BIO_get_data((BIO *)bio);
    return state->inputLength;
}

const unsigned char *vpcep_channel_bio_output(const BIO *bio, size_t *length) {
    const vpcep_channel_bio_state *state = BIO_get_data((BIO *)bio);
    *length = state->outputLength;
    return state->outputLength == 0 ? NULL : state->output;
}

void vpcep_channel_bio_clear_output(BIO *bio) {
    vpcep_channel_bio_state *state = BIO_get_data(bio);
    free(state->output);
    state->output = NULL;
    state->outputLength = 0;
    state->outputCapacity = 0;
}
