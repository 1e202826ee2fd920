/* SPDX-License-Identifier: MIT */
/* What every part of pyleakctl may use. */
#ifndef PYLEAKCTL_COMMON_H
#define PYLEAKCTL_COMMON_H

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#endif
