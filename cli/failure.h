/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * How pyleakctl reports a failure: one line on stderr and, with --json, the error document
 * {"error": {"code", "message", "hint"}} on stdout (../shared/cli-contract.md; "hint" where
 * one helps).
 */
#ifndef PYLEAKCTL_FAILURE_H
#define PYLEAKCTL_FAILURE_H

#include <jansson.h>
#include <stdbool.h>

/*
 * Prints message, and doc if json: for a document that already holds the error. A hint on what
 * to do, chosen by the error's code, follows the message on its line and is added to doc.
 */
void failure_print(bool json, json_t *doc, const char *message);

/* Reports a failure found on this side; returns err so that callers can return it at once. */
int __attribute__((format(printf, 4, 5)))
fail(bool json, int err, const char *code, const char *fmt, ...);

#endif
