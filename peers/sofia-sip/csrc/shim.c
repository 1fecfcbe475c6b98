/* A small shim over Sofia-SIP's message parser, so that the Rust side needs
 * no knowledge of Sofia's structure layouts: the real headers are included
 * here and only plain integers cross the boundary. */
#include <string.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

/* Parses one complete message (msg_make copies it into a message buffer and
 * parses the start line and every header field). Returns 0 when Sofia
 * parsed it without error, -1 otherwise. */
int carevox_sofia_parse(const char *data, size_t len)
{
    msg_t *msg = msg_make(sip_default_mclass(), 0, data, (ssize_t)len);
    if (!msg)
        return -1;
    sip_t const *sip = sip_object(msg);
    int rc = (sip && !sip->sip_error && (sip->sip_request || sip->sip_status)) ? 0 : -1;
    msg_destroy(msg);
    return rc;
}

static unsigned long len0(char const *s) { return s ? (unsigned long)strlen(s) : 0; }

/* Parses and reads the core headers: Via (host, port, branch), From and To
 * (user, host, tag), Call-ID, CSeq, Contact (host), Max-Forwards and
 * Content-Length. Returns a checksum of what it read so that nothing can be
 * optimised away, or 0 on error. */
unsigned long carevox_sofia_parse_decode(const char *data, size_t len)
{
    msg_t *msg = msg_make(sip_default_mclass(), 0, data, (ssize_t)len);
    if (!msg)
        return 0;
    sip_t const *sip = sip_object(msg);
    unsigned long sum = 0;
    if (sip && !sip->sip_error && sip->sip_via && sip->sip_from && sip->sip_to &&
        sip->sip_call_id && sip->sip_cseq) {
        sum += len0(sip->sip_via->v_host) + len0(sip->sip_via->v_port) + len0(sip->sip_via->v_branch);
        sum += len0(sip->sip_from->a_url->url_user) + len0(sip->sip_from->a_url->url_host) + len0(sip->sip_from->a_tag);
        sum += len0(sip->sip_to->a_url->url_user) + len0(sip->sip_to->a_url->url_host) + len0(sip->sip_to->a_tag);
        sum += len0(sip->sip_call_id->i_id);
        sum += sip->sip_cseq->cs_seq + len0(sip->sip_cseq->cs_method_name);
        if (sip->sip_contact)
            sum += len0(sip->sip_contact->m_url->url_host);
        if (sip->sip_max_forwards)
            sum += sip->sip_max_forwards->mf_count;
        if (sip->sip_content_length)
            sum += sip->sip_content_length->l_length;
        sum += 1;
    }
    msg_destroy(msg);
    return sum;
}
