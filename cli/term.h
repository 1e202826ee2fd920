/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* Text on a terminal: its width in columns, and lines wrapped at word boundaries to fit it. */
#ifndef PYLEAKCTL_TERM_H
#define PYLEAKCTL_TERM_H

#include <stddef.h>
#include <stdio.h>

#define TERM_COLUMNS_DEFAULT	80

/* Display width of UTF-8 text, counting code points (continuation bytes take no column). */
size_t text_width(const char *s);

/* Bytes of the longest prefix of s that takes at most cols columns, whole code points. */
size_t text_fit(const char *s, size_t cols);

/* Columns of the terminal: $COLUMNS, else the width of the tty on fd, else 80. */
size_t term_columns(int fd);

/*
 * text after prefix, broken at spaces into lines of at most width columns; the lines after
 * the first are indented by the prefix's width. A word longer than a line stays whole.
 */
void text_wrap_print(FILE *out, const char *prefix, const char *text, size_t width);

#endif
