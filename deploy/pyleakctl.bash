# SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
# bash completion for pyleakctl: commands, each command's options, and their values. Installed
# by `make install` as share/bash-completion/completions/pyleakctl; needs no bash-completion
# helpers, so `source deploy/pyleakctl.bash` works alone too.

# Prints the daemon's answer to pyleakctl ARGS... --json, or nothing if it does not answer in
# time; --socket from the line being completed is passed on.
_pyleakctl_ask()
{
    timeout 2 "${_pyleakctl_cmd:-pyleakctl}" ${_pyleakctl_socket:+--socket "$_pyleakctl_socket"} \
        "$@" --json 2>/dev/null
}

# PIDs of Python processes: the daemon's `ps`, else the processes whose executable (or, where
# it cannot be read, whose name) starts with "python".
_pyleakctl_pids()
{
    local out dir exe
    out=$(_pyleakctl_ask ps) && [[ -n $out ]] &&
        { sed -n 's/^ *"pid": \([0-9]*\),\{0,1\}$/\1/p' <<<"$out"; return; }
    for dir in /proc/[0-9]*; do
        exe=$(readlink "$dir/exe" 2>/dev/null) || exe=$(cat "$dir/comm" 2>/dev/null)
        [[ ${exe##*/} == python* ]] && echo "${dir#/proc/}"
    done
}

# Type names of a process that the daemon tracks already: asking `top` of another would
# attach to it, which a <Tab> should not do.
_pyleakctl_types()
{
    local pid=$1 status
    [[ $pid =~ ^[0-9]+$ ]] || return
    status=$(_pyleakctl_ask status) || return
    grep -Eq "^ {6}\"pid\": $pid,?\$" <<<"$status" || return
    _pyleakctl_ask top -p "$pid" -n 100000 | sed -n 's/^ *"type": "\(.*\)",\{0,1\}$/\1/p'
}

_pyleakctl()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="status ps attach detach top leaks sites path native snapshot report postmortem diff help"
    local global="--socket --json --help --version"
    local cmd="" pid="" words=0 i word opts
    local _pyleakctl_socket="" _pyleakctl_cmd=${COMP_WORDS[0]}

    # The command, the target and the socket named so far; option values are not commands.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
        -p) pid=${COMP_WORDS[i+1]}; ((i++)) ;;
        --socket) _pyleakctl_socket=${COMP_WORDS[i+1]}; ((i++)) ;;
        -n|-o|--output|--mode|--budget|--interval|--sort|--window|--type|--format) ((i++)) ;;
        -*) ;;
        *) [[ -z $cmd ]] && cmd=$word; ((words++)) ;;
        esac
    done

    case $prev in
    -p)
        COMPREPLY=($(compgen -W "$(_pyleakctl_pids)" -- "$cur")); return ;;
    --mode)
        COMPREPLY=($(compgen -W "precise sampled" -- "$cur")); return ;;
    --sort)
        COMPREPLY=($(compgen -W "live bytes growth" -- "$cur")); return ;;
    --format)
        COMPREPLY=($(compgen -W "table folded pprof" -- "$cur")); return ;;
    --type)
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$(_pyleakctl_types "$pid")" -- "$cur")); return ;;
    -o|--output|--socket)
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -n|--budget|--interval|--window)
        return ;;
    esac

    case $cmd in
    attach) opts="-p --mode --budget --force" ;;
    detach) opts="-p" ;;
    top) opts="-p --once -n --interval --sort --mode --force" ;;
    leaks) opts="-p --window -n --mode --force" ;;
    sites) opts="-p --type -n --format -o --mode --force" ;;
    path) opts="-p --type --mode" ;;
    native) opts="-p --mode --force" ;;
    snapshot|report) opts="-p --window -o" ;;
    postmortem) opts="-p" ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
    elif [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    elif [[ $cmd == help && $words == 1 ]]; then
        COMPREPLY=($(compgen -W "${commands% help}" -- "$cur"))
    elif [[ $cmd == postmortem && $words == 1 ]]; then
        # the PIDs of the saved reports
        COMPREPLY=($(compgen -W "$(_pyleakctl_ask postmortem | sed -n 's/^ *"pid": \([0-9]*\),\{0,1\}$/\1/p')" -- "$cur"))
    elif [[ $cmd == diff ]]; then
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

complete -F _pyleakctl pyleakctl
