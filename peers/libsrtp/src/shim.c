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

int cv_libsrtp_protect(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_protect(s, buf, len); }
int cv_libsrtp_unprotect(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_unprotect(s, buf, len); }
int cv_libsrtp_protect_rtcp(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_protect_rtcp(s, buf, len); }
int cv_libsrtp_unprotect_rtcp(srtp_t s, uint8_t *buf, int *len) { return (int)srtp_unprotect_rtcp(s, buf, len); }
int cv_libsrtp_dealloc(srtp_t s) { return (int)srtp_dealloc(s); }
int cv_libsrtp_max_trailer(void) { return SRTP_MAX_TRAILER_LEN; }
