/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ssh-agent.h: the ssh-agent protocol (draft-miller-ssh-agent) subset the signer speaks:
 * REQUEST_IDENTITIES -> IDENTITIES_ANSWER, SIGN_REQUEST (ed25519) -> SIGN_RESPONSE, anything
 * else -> FAILURE. Framing and message handling only: pure functions over bytes, no I/O, so
 * hostile input is tested directly. Never prints. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sshkeys.h"

#define SSH_AGENT_MAX_MESSAGE (256 * 1024)

enum {
    SSH_AGENT_FAILURE = 5,
    SSH_AGENT_SUCCESS = 6,
    SSH_AGENTC_REQUEST_IDENTITIES = 11,
    SSH_AGENT_IDENTITIES_ANSWER = 12,
    SSH_AGENTC_SIGN_REQUEST = 13,
    SSH_AGENT_SIGN_RESPONSE = 14,
};

typedef struct ssh_agent_ops {
    /* The identities this connection may use, in order. */
    int (*identities)(void *userdata, sshkey_info_cb cb, void *cb_userdata);
    /* Sign with the key whose public key is pk, only if it is one of the identities; < 0 refuses
     * (the client gets FAILURE). */
    int (*sign)(void *userdata, const uint8_t pk[SSHKEY_PK_BYTES], const uint8_t *data, size_t len,
                uint8_t sig[SSHKEY_SIG_BYTES]);
} ssh_agent_ops;

/* How much of buf is one whole message: 0 = need more bytes, > 0 = the frame's total length
 * (4 + body), -EMSGSIZE = the announced length is zero or above SSH_AGENT_MAX_MESSAGE (the
 * caller closes the connection). */
int64_t ssh_agent_frame(const uint8_t *buf, size_t len);

/* Answer one message body (the bytes after the length). *ret is the framed reply (caller
 * frees). Returns the request type (or -1 for an empty body) for the caller's accounting;
 * -ENOMEM only when no reply could be built. */
int ssh_agent_handle(const uint8_t *body, size_t len, const ssh_agent_ops *ops, void *userdata,
                     uint8_t **ret, size_t *ret_len);
