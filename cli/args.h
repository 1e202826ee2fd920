/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/* pyleakctl's command line: the options, their parsing and the help text. */
#ifndef PYLEAKCTL_ARGS_H
#define PYLEAKCTL_ARGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DEFAULT_SOCKET		"/run/pyleakd/pyleakd.sock"
#define OPERANDS_MAX		2	/* diff's two files */

/* Options that belong to commands; a command lists those it takes as a mask of these bits. */
enum cmd_option {
	CO_PID,
	CO_MODE,
	CO_BUDGET,
	CO_ONCE,
	CO_COUNT,
	CO_INTERVAL,
	CO_SORT,
	CO_WINDOW,
	CO_TYPE,
	CO_FORMAT,
	CO_OUTPUT,
	CO_FORCE,
	CO_NR,
};

#define CO(name)		(1u << CO_##name)

enum format {
	FORMAT_TABLE,
	FORMAT_FOLDED,
	FORMAT_PPROF,
};

/* The values of --mode and --sort, as the daemon names them. */
extern const char *const modes[];
extern const char *const sorts[];

struct command;
struct client;

struct opts {
	const struct command *cmd;
	const char *socket;
	const char *type;
	const char *output;	/* -o FILE, or NULL for stdout */
	const char *operands[OPERANDS_MAX];	/* the words after the command (diff's files) */
	unsigned int noperands;
	int pid;
	int count;
	int window;
	int mode;		/* index into modes[] */
	int sort;		/* index into sorts[] */
	int format;		/* enum format */
	double interval;
	double budget;		/* sent only if seen has CO(BUDGET) */
	unsigned int seen;	/* CO_* bits given on the command line */
	bool json;
	bool once;
	bool force;
	bool help;
	bool version;
	char usage_error[256];	/* first usage error, reported once --json is known */
};

struct command {
	const char *name;
	const char *summary;
	const char *operands;	/* synopsis of the words it takes after its name, if any */
	unsigned int noperands;
	bool pid_operand;	/* its one operand, optional, is a PID (as -p PID) */
	unsigned int options;	/* CO_* bits it takes */
	unsigned int required;	/* CO_* bits it needs */
	bool refresh;		/* repeats until a signal unless --once or --json */
	bool offline;		/* works on files: run without a connection to the daemon */
	json_t *(*request)(const struct opts *o);
	/* Instead of request: a command of several requests (or, offline, of none); c is NULL offline. */
	int (*run)(const struct opts *o, struct client *c);
	int (*render)(FILE *out, json_t *reply, const struct opts *o);
};

/* The commands, in the order the help lists them (main.c). */
extern const struct command commands[];
extern const size_t commands_nr;

/* Fills o from the command line; a usage error is reported and returns -EINVAL. */
int opts_parse(struct opts *o, int argc, char **argv);

/* The help: of cmd, or of pyleakctl if cmd is NULL. */
void usage_print(const struct command *cmd);

#endif
