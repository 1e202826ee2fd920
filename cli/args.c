// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* pyleakctl's command line (args.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"
#include "failure.h"

#define DEFAULT_COUNT		20
#define DEFAULT_WINDOW		60
#define DEFAULT_INTERVAL	2
#define INTERVAL_MAX		86400	/* a day: keeps the sleep arithmetic far from overflow */

#define STR(x)			#x
#define XSTR(x)			STR(x)

#define POSITIVE		"a positive integer"

/*
 * The first word of a synopsis is the option's name and what follows its value; an option
 * without "expected" takes one of the choices its synopsis lists.
 */
static const struct {
	int val;		/* getopt_long's code for it */
	const char *synopsis;
	const char *help;
	const char *expected;	/* what a bad value should have been */
} cmd_options[CO_NR] = {
	[CO_PID] = { 'p', "-p PID", "the target process", POSITIVE },
	[CO_MODE] = {
		'm', "--mode precise|sampled",
		"how to track, if this attaches (default: the daemon's, sampled)", NULL,
	},
	[CO_BUDGET] = {
		'b', "--budget FRACTION",
		"CPU share of the target its probes may cost (default: the daemon's, 0.01)",
		"a fraction in [0, 1]",
	},
	[CO_ONCE] = { 'O', "--once", "print one table and exit", NULL },
	[CO_COUNT] = {
		'n', "-n N", "rows to show (default " XSTR(DEFAULT_COUNT) ", 0: every row)",
		"a non-negative integer",
	},
	[CO_INTERVAL] = {
		'i', "--interval SEC",
		"seconds between refreshes (default " XSTR(DEFAULT_INTERVAL) ", fractions allowed)",
		"seconds > 0, at most " XSTR(INTERVAL_MAX),
	},
	[CO_SORT] = { 's', "--sort live|bytes|growth", "order of the rows (default live)", NULL },
	[CO_WINDOW] = {
		'w', "--window SEC",
		"seconds of history to judge (default " XSTR(DEFAULT_WINDOW) ")",
		POSITIVE " of seconds",
	},
	[CO_TYPE] = { 't', "--type TYPE", "type name as type(obj).__name__ shows it", "a name" },
	[CO_FORMAT] = {
		'f', "--format table|folded|pprof",
		"output format (default table; pprof is gzip'd binary)", NULL,
	},
	[CO_OUTPUT] = { 'o', "-o FILE", "write the output to FILE instead of stdout", "a file name" },
	[CO_FORCE] = {
		'F', "--force", "precise mode stays even over the budget (else: falls back to sampled)",
		NULL,
	},
};

static const char *const global_options[][2] = {
	{ "--socket PATH", "daemon socket (default: $PYLEAKD_SOCKET, else " DEFAULT_SOCKET ")" },
	{ "--json", "print the daemon's reply as one JSON document" },
	{ "-h, --help", "this help; after a command, that command's help" },
	{ "--version", "print the version" },
};

const char *const modes[] = { "precise", "sampled", NULL };
const char *const sorts[] = { "live", "bytes", "growth", NULL };

static const char *const formats[] = {
	[FORMAT_TABLE] = "table",
	[FORMAT_FOLDED] = "folded",
	[FORMAT_PPROF] = "pprof",
	NULL,
};

static const struct option long_options[] = {
	{ "socket",	required_argument,	NULL, 'S' },
	{ "json",	no_argument,		NULL, 'j' },
	{ "help",	no_argument,		NULL, 'h' },
	{ "version",	no_argument,		NULL, 'V' },
	{ "mode",	required_argument,	NULL, 'm' },
	{ "budget",	required_argument,	NULL, 'b' },
	{ "once",	no_argument,		NULL, 'O' },
	{ "interval",	required_argument,	NULL, 'i' },
	{ "sort",	required_argument,	NULL, 's' },
	{ "window",	required_argument,	NULL, 'w' },
	{ "type",	required_argument,	NULL, 't' },
	{ "format",	required_argument,	NULL, 'f' },
	{ "output",	required_argument,	NULL, 'o' },
	{ "force",	no_argument,		NULL, 'F' },
	{ NULL,		0,			NULL, 0 },
};

static const struct command *command_find(const char *name)
{
	size_t i;

	for (i = 0; i < commands_nr; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static int option_name_len(enum cmd_option id)
{
	return (int)strcspn(cmd_options[id].synopsis, " ");
}

static void option_help_print(const char *synopsis, const char *help)
{
	printf("  %-30s %s\n", synopsis, help);
}

static void command_usage_print(const struct command *cmd)
{
	unsigned int id;

	printf("USAGE\n  pyleakctl [--socket PATH] %s", cmd->name);
	if (cmd->operands)
		printf(" %s", cmd->operands);
	for (id = 0; id < CO_NR; id++)
		if (cmd->options & (1u << id))
			printf(cmd->required & (1u << id) ? " %s" : " [%s]",
			       cmd_options[id].synopsis);
	printf(" [--json]\n\n  %s\n\nOPTIONS\n", cmd->summary);
	for (id = 0; id < CO_NR; id++)
		if (cmd->options & (1u << id))
			option_help_print(cmd_options[id].synopsis, cmd_options[id].help);
	for (id = 0; id < ARRAY_SIZE(global_options); id++)
		option_help_print(global_options[id][0], global_options[id][1]);
}

/* Option help, naming the commands that take each command option. */
static void options_usage_print(void)
{
	const char *sep;
	unsigned int id;
	size_t i;

	for (id = 0; id < ARRAY_SIZE(global_options); id++)
		option_help_print(global_options[id][0], global_options[id][1]);
	for (id = 0; id < CO_NR; id++) {
		printf("  %-30s %s [", cmd_options[id].synopsis, cmd_options[id].help);
		sep = "";
		for (i = 0; i < commands_nr; i++) {
			if (commands[i].options & (1u << id)) {
				printf("%s%s", sep, commands[i].name);
				sep = " ";
			}
		}
		puts("]");
	}
}

void usage_print(const struct command *cmd)
{
	size_t i;

	if (cmd) {
		command_usage_print(cmd);
		return;
	}
	puts("USAGE\n"
	     "  pyleakctl [--socket PATH] [--json] COMMAND [OPTIONS]\n"
	     "\n"
	     "  Client of pyleakd, the memory-leak profiler for Python processes. Options may\n"
	     "  come before or after the command.\n"
	     "\n"
	     "COMMANDS");
	for (i = 0; i < commands_nr; i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("  %-10s %s\n", "help", "this help; help COMMAND shows a command's usage");
	puts("\nOPTIONS");
	options_usage_print();
	puts("\n"
	     "EXIT STATUS\n"
	     "  0 success, 1 failure (daemon error, cannot connect), 2 usage error or an input\n"
	     "  file that is not a snapshot. On failure one line on stderr, with a hint where one\n"
	     "  helps; with --json also {\"error\": {\"code\": ..., \"message\": ..., \"hint\": ...}}\n"
	     "  on stdout.\n"
	     "\n"
	     "EXAMPLES\n"
	     "  pyleakctl status\n"
	     "  pyleakctl attach -p 4242 --budget 0.005\n"
	     "  pyleakctl attach -p 4242 --mode precise --force\n"
	     "  pyleakctl top -p 4242\n"
	     "  pyleakctl top -p 4242 --once --json | jq .types[0]\n"
	     "  pyleakctl leaks -p 4242 --window 120\n"
	     "  pyleakctl sites -p 4242 --type str\n"
	     "  pyleakctl sites -p 4242 --type str --format folded | flamegraph.pl > str.svg\n"
	     "  pyleakctl sites -p 4242 --type str --format pprof -o str.pb.gz\n"
	     "  pyleakctl path -p 4242 --type str\n"
	     "  pyleakctl native -p 4242\n"
	     "  pyleakctl sites -p 4242 --type native --format pprof -o native.pb.gz\n"
	     "  pyleakctl snapshot -p 4242 -o before.json; sleep 600; pyleakctl snapshot -p 4242 -o after.json\n"
	     "  pyleakctl diff before.json after.json\n"
	     "  pyleakctl report -p 4242 -o report.html\n"
	     "  pyleakctl postmortem; pyleakctl postmortem 4242\n"
	     "  PYLEAKD_SOCKET=/tmp/p.sock pyleakctl status");
}

static void __attribute__((format(printf, 2, 3)))
usage_note(struct opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->usage_error[0])
		return;
	va_start(ap, fmt);
	vsnprintf(o->usage_error, sizeof(o->usage_error), fmt, ap);
	va_end(ap);
}

/* A decimal integer in [min, INT_MAX]. */
static int integer_parse(const char *s, long min, int *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int interval_parse(const char *s, double *out)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0 && v <= INTERVAL_MAX))
		return -EINVAL;
	*out = v;
	return 0;
}

static int choice_parse(const char *s, const char *const *set, int *out)
{
	int i;

	for (i = 0; set[i]; i++) {
		if (!strcmp(s, set[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Stores the value of command option id in o. */
static int cmd_option_parse(struct opts *o, enum cmd_option id)
{
	switch (id) {
	case CO_PID:
		return integer_parse(optarg, 1, &o->pid);
	case CO_MODE:
		return choice_parse(optarg, modes, &o->mode);
	case CO_BUDGET: {
		char *end;

		errno = 0;
		o->budget = strtod(optarg, &end);
		return *optarg && !*end && !errno && o->budget >= 0 && o->budget <= 1 ? 0 : -EINVAL;
	}
	case CO_ONCE:
		o->once = true;
		return 0;
	case CO_FORCE:
		o->force = true;
		return 0;
	case CO_COUNT:
		/* The daemon's n of 0 means every row. */
		return integer_parse(optarg, 0, &o->count);
	case CO_INTERVAL:
		return interval_parse(optarg, &o->interval);
	case CO_SORT:
		return choice_parse(optarg, sorts, &o->sort);
	case CO_WINDOW:
		return integer_parse(optarg, 1, &o->window);
	case CO_TYPE:
		o->type = optarg;
		return *optarg ? 0 : -EINVAL;
	case CO_OUTPUT:
		o->output = optarg;
		return *optarg ? 0 : -EINVAL;
	default:
		return choice_parse(optarg, formats, &o->format);
	}
}

/* val is one of cmd_options[]' codes: options_scan() handles the global ones itself. */
static enum cmd_option cmd_option_find(int val)
{
	enum cmd_option id = 0;

	while (id < CO_NR - 1 && cmd_options[id].val != val)
		id++;
	return id;
}

static void option_invalid_note(struct opts *o, int c, char **argv)
{
	const char *arg = argv[optind - 1];

	if (c == ':')
		usage_note(o, "option '%s' needs a value", arg);
	else if (optopt && strchr(arg, '='))	/* getopt's optopt names a known flag */
		usage_note(o, "option '%.*s' takes no value", (int)strcspn(arg, "="), arg);
	else if (optopt > 0 && optopt < 0x80 && arg[1] != '-')
		usage_note(o, "unknown option '-%c'", optopt);
	else
		usage_note(o, "unknown option '%s'", arg);
}

static void options_scan(struct opts *o, int argc, char **argv)
{
	enum cmd_option id;
	const char *syn;
	int c;

	opterr = 0;	/* errors are reported once, after --json is known */
	while ((c = getopt_long(argc, argv, ":p:n:o:h", long_options, NULL)) != -1) {
		switch (c) {
		case 'S':
			o->socket = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			o->help = true;
			break;
		case 'V':
			o->version = true;
			break;
		case ':':
		case '?':
			option_invalid_note(o, c, argv);
			break;
		default:
			id = cmd_option_find(c);
			syn = cmd_options[id].synopsis;
			if (cmd_option_parse(o, id))
				usage_note(o, "invalid %.*s '%s': expected %s",
					   option_name_len(id), syn, optarg,
					   cmd_options[id].expected ?: strchr(syn, ' ') + 1);
			o->seen |= 1u << id;
		}
	}
}

/* Options valid for some command but not this one, and the ones it cannot do without. */
static void command_check(struct opts *o)
{
	unsigned int extra = o->seen & ~o->cmd->options;
	unsigned int missing = o->cmd->required & ~o->seen;

	if (extra)
		usage_note(o, "%s does not take %.*s", o->cmd->name,
			   option_name_len(__builtin_ctz(extra)),
			   cmd_options[__builtin_ctz(extra)].synopsis);
	else if (missing)
		usage_note(o, "%s needs %s", o->cmd->name,
			   cmd_options[__builtin_ctz(missing)].synopsis);
	else if (o->cmd->pid_operand && o->noperands && (o->seen & CO(PID)))
		usage_note(o, "%s takes a PID or -p PID, not both", o->cmd->name);
	else if (o->cmd->pid_operand && o->noperands && integer_parse(o->operands[0], 1, &o->pid))
		usage_note(o, "%s: PID must be a positive integer", o->cmd->name);
	else if (o->noperands < o->cmd->noperands && !o->cmd->pid_operand)
		usage_note(o, "%s needs %s", o->cmd->name, o->cmd->operands);
	if (o->cmd->pid_operand && o->noperands && !o->usage_error[0])
		o->seen |= CO(PID);
}

int opts_parse(struct opts *o, int argc, char **argv)
{
	*o = (struct opts){
		.count = DEFAULT_COUNT,
		.window = DEFAULT_WINDOW,
		.interval = DEFAULT_INTERVAL,
	};
	options_scan(o, argc, argv);
	if (optind < argc && !strcmp(argv[optind], "help")) {
		o->help = true;
		optind++;
	}
	if (optind < argc) {
		o->cmd = command_find(argv[optind]);
		if (!o->cmd)
			usage_note(o, "unknown command '%s'", argv[optind]);
		optind++;
	}
	while (o->cmd && optind < argc && o->noperands < o->cmd->noperands)
		o->operands[o->noperands++] = argv[optind++];
	if (optind < argc)
		usage_note(o, "unexpected argument '%s'", argv[optind]);
	if (o->cmd && !o->help && !o->version)
		command_check(o);
	if (!o->usage_error[0])
		return 0;
	return fail(o->json, -EINVAL, "bad_request", "%s (see 'pyleakctl %s%s--help')",
		    o->usage_error, o->cmd ? o->cmd->name : "", o->cmd ? " " : "");
}
