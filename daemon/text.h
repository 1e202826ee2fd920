/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Strings from a target (names, paths) made fit for JSON and logs. */
#ifndef PYLEAK_TEXT_H
#define PYLEAK_TEXT_H

/* Replaces, in place, each byte of s that does not belong to a well-formed UTF-8 sequence
 * (overlong forms, surrogates and code points past U+10FFFF included) with '?': jansson
 * refuses such strings, and a reply would lose the row that held one. */
void text_utf8_fix(char *s);

#endif
