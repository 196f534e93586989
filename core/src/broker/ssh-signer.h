/* SPDX-License-Identifier: Apache-2.0 */
/* broker/ssh-signer.h: the ssh-agent signer the vault daemon runs on each container's
 * <runtime>/containers/<name>/ssh-agent.sock (/run/terok/ssh-agent.sock inside), in its epoll
 * loop. A connection sees only the keys linked to its container's scope; private keys are read
 * from the vault for one signature and wiped right after. Every signature is audited (container,
 * key fingerprint; never the data). Never prints. */
#pragma once

#include <pthread.h>

#include <sqlite3.h>

#include "broker/proxy.h"
#include "daemon/evloop.h"
#include "vault.h"

#define SSH_SIGNER_MAX_CLIENTS 32 /* per container */

typedef struct ssh_signer ssh_signer;

/* v may be NULL (no vault backend: every sign fails, no identities). audit may be NULL. */
int ssh_signer_new(evloop *l, vault *v, sqlite3 *db, void (*audit)(void *, const broker_audit *),
                   void *audit_userdata, ssh_signer **ret);
ssh_signer *ssh_signer_free(ssh_signer *s);
/* The vault and the database are shared with other threads (the broker's workers): hold `mu`
 * around every use of them. NULL (the default): no locking. */
void ssh_signer_set_lock(ssh_signer *s, pthread_mutex_t *mu);

/* Listen on <dir>/ssh-agent.sock (0666) for container when the store records an SSH scope for
 * it (replacing an earlier listener). Returns 1 when listening, 0 when the container has no
 * scope (nothing opened, any old socket file removed). */
int ssh_signer_open(ssh_signer *s, const char *container, const char *dir, terok_error *err);
/* Close the container's listener and its connections, unlink the socket. Returns how many. */
int ssh_signer_close(ssh_signer *s, const char *container);
size_t ssh_signer_listeners(ssh_signer *s);
