/* A few plain functions over libsrtp2, so that the Rust side never has to
 * mirror libsrtp's structs: the real header decides their layout. */
#include <srtp2/srtp.h>
#include <stdint.h>
#include <string.h>

/* Suites in the order of carevox_srtp::Suite::ALL. */
static int set_policy(srtp_policy_t *p, int suite) {
    switch (suite) {
    case 0:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
        return 0;
    case 1:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
        return 0;
    case 2:
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
        return 0;
    case 3:
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(&p->rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
        return 0;
    case 4:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
        return 0;
    case 5:
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtcp);
        return 0;
    default:
        return -1;
    }
}

int cv_libsrtp_init(void) { return (int)srtp_init(); }

/* Creates a session. key_salt: master key then master salt (copied by
 * libsrtp). inbound: accept any SSRC; otherwise one outbound stream `ssrc`.
 * encrypt_rtcp == 0 sends SRTCP authenticated only (E=0). */
int cv_libsrtp_create(srtp_t *out, int suite, const uint8_t *key_salt, int inbound,
                      uint32_t ssrc, unsigned long window, int encrypt_rtcp) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (set_policy(&policy, suite) != 0) {
        return -1;
    }
    if (!encrypt_rtcp) {
        policy.rtcp.sec_serv = sec_serv_auth;
    }
    if (inbound) {
        policy.ssrc.type = ssrc_any_inbound;
    } else {
        policy.ssrc.type = ssrc_specific;
        policy.ssrc.value = ssrc;
    }
    policy.key = (unsigned char *)key_salt;
    policy.window_size = window;
    policy.allow_repeat_tx = 0;
    policy.next = NULL;
    return (int)srtp_create(out, &policy);
}

/* As cv_libsrtp_create, with two master keys told apart by MKIs of
 * `mki_len` bytes (libsrtp copies keys and MKIs during srtp_create). */
int cv_libsrtp_create_mki(srtp_t *out, int suite, const uint8_t *key_salt_1,
                          const uint8_t *key_salt_2, const uint8_t *mki_1, const uint8_t *mki_2,
                          unsigned int mki_len, int inbound, uint32_t ssrc, unsigned long window) {
    srtp_policy_t policy;
    srtp_master_key_t k1, k2;
    srtp_master_key_t *keys[2];
    memset(&policy, 0, sizeof policy);
    if (set_policy(&policy, suite) != 0) {
        return -1;
    }
    if (inbound) {
        policy.ssrc.type = ssrc_any_inbound;
    } else {
        policy.ssrc.type = ssrc_specific;
        policy.ssrc.value = ssrc;
    }
    k1.key = (unsigned char *)key_salt_1;
    k1.mki_id = (unsigned char *)mki_1;
    k1.mki_size = mki_len;
    k2.key = (unsigned char *)key_salt_2;
    k2.mki_id = (unsigned char *)mki_2;
    k2.mki_size = mki_len;
    keys[0] = &k1;
    keys[1] = &k2;
    policy.keys = keys;
    policy.num_master_keys = 2;
    policy.window_size = window;
    policy.next = NULL;
    return (int)srtp_create(out, &policy);
}

int cv_libsrtp_protect_mki(srtp_t s, uint8_t *buf, int *len, unsigned int key) {
    return (int)srtp_protect_mki(s, buf, len, 1, key);
}
int cv_libsrtp_unprotect_mki(srtp_t s, uint8_t *buf, int *len) {
    return (int)srtp_unprotect_mki(s, buf, len, 1);
}
int cv_libsrtp_protect_rtcp_mki(srtp_t s, uint8_t *buf, int *len, unsigned int key) {
    return (int)srtp_protect_rtcp_mki(s, buf, len, 1, key);
}
int cv_libsrtp_unprotect_rtcp_mki(srtp_t s, uint8_t *buf, int *len) {
    return (int)srtp_unprotect_rtcp_mki(s, buf, len, 1);
}

int cv_libsrtp_protect(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_protect(s, buf, len); }
int cv_libsrtp_unprotect(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_unprotect(s, buf, len); }
int cv_libsrtp_protect_rtcp(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_protect_rtcp(s, buf, len); }
int cv_libsrtp_unprotect_rtcp(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_unprotect_rtcp(s, buf, len); }
int cv_libsrtp_dealloc(srtp_t s) { return (int)srtp_dealloc(s); }
int cv_libsrtp_max_trailer(void) { return SRTP_MAX_TRAILER_LEN; }
