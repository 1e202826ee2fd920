/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* The protocol's commands (docs/protocol.md): a request line from a peer in, a reply out. */
#ifndef PYLEAK_HANDLERS_H
#define PYLEAK_HANDLERS_H

#include <jansson.h>

#include "peer.h"
#include "target.h"

/* opt: how targets are attached on demand. */
void handlers_init(const struct target_options *opt);

/* The reply to one request line (clients: connections open, for `status`); never NULL but
 * when out of memory. */
json_t *handlers_reply(const struct peer *p, const char *line, int clients);

/* {"error": {"code", "message"}}, counted in `status`. */
json_t *reply_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
