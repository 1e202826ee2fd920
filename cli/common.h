/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* What every part of pyleakctl may use. */
#ifndef PYLEAKCTL_COMMON_H
#define PYLEAKCTL_COMMON_H

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#ifndef PYLEAK_VERSION
#define PYLEAK_VERSION		"0.1.0"	/* the Makefile passes its VERSION */
#endif

#endif
