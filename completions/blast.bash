# bash completion for blast(1)                                   -*- shell-script -*-
# shellcheck shell=bash
#
# Commands, each command's options, the values of options that take one of a fixed
# set, and files where a file is expected: campaign files (*.yml, *.yaml) for send,
# check, preview and bounces, and with directories for prune; reports (*.json) for
# report. The lists follow each
# command's --help; tests/integration/test_completion.py holds them to it.
# Installed as share/bash-completion/completions/blast, where bash-completion loads
# it the first time blast is completed.

_blast_commands="send check preview report suppress bounces journal prune version help"

_blast()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        # without bash-completion's helpers: plain words, files by compgen
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    # the command is the first word after blast that is not an option
    local i command="" operands=0 ops=()
    for ((i = 1; i < cword; i++)); do
        if [[ -z $command ]]; then
            case ${words[i]} in
                -*) ;;
                *) command=${words[i]} ;;
            esac
        elif [[ ${words[i]} != -* ]]; then
            case ${words[i - 1]} in
                # an option's value is not an operand
                --dry-run | --limit | --to | --report | --journal | --exclude-report | \
                    --suppress-from | --shard | --shard-count | --deadline | --metrics | \
                    --log-format | --max-problems | --row | --email | -o | --output | \
                    --format | --db | --class | --rule | --campaign | --older-than) ;;
                *) ops+=("${words[i]}") ;;
            esac
        fi
    done

    operands=${#ops[@]}
    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            _blast_words '--help --version'
        else
            _blast_words "$_blast_commands"
        fi
        return
    fi

    # an option's value
    case $prev in
        --log-format)
            _blast_words 'text json'
            return
            ;;
        --format)
            if [[ $command == suppress ]]; then
                _blast_words 'text csv'
            else
                _blast_words 'text json csv html prometheus'
            fi
            return
            ;;
        --class)
            _blast_words 'manual hard soft complaint unsubscribe'
            return
            ;;
        --dry-run)
            # prune's is a flag: its operands follow
            if [[ $command != prune ]]; then
                _blast_files -d
                return
            fi
            ;;
        --exclude-report | --suppress-from)
            _blast_files json
            return
            ;;
        --report | --journal | --metrics | -o | --output | --db)
            _blast_files
            return
            ;;
        --limit | --to | --shard | --shard-count | --deadline | --max-problems | --row | \
            --email | --rule | --campaign | --older-than)
            # a number, an address, a name: nothing to offer
            return
            ;;
    esac

    local opts
    case $command in
        send)
            opts='--dry-run --limit --to --report --journal --fresh --force --resend-unknown
                --no-compact --no-breaker --exclude-report --suppress-from --shard --shard-count --deadline --metrics
                --progress --log-format -q --quiet -v --verbose -h --help'
            ;;
        check)
            opts='--connect --dns --limit --max-problems --shard --shard-count -q --quiet -v
                --verbose --log-format -h --help'
            ;;
        preview)
            opts='--row --email -o --output -h --help'
            ;;
        report)
            opts='--format --db --no-db --merge -o --output -h --help'
            ;;
        suppress)
            opts='--format --class --rule --campaign -h --help'
            ;;
        bounces)
            opts='--limit --deadline -q --quiet -v --verbose --log-format -h --help'
            ;;
        journal)
            opts='--journal -q --quiet -h --help'
            ;;
        prune)
            opts='--older-than --dry-run -q --quiet --log-format -h --help'
            ;;
        version)
            opts='-h --help'
            ;;
        help)
            [[ $operands -eq 0 ]] && _blast_words "$_blast_commands"
            return
            ;;
        *)
            return
            ;;
    esac
    if [[ $cur == -* ]]; then
        _blast_words "$opts"
        return
    fi

    # operands
    case $command in
        send | check | preview)
            [[ $operands -eq 0 ]] && _blast_files '@(yml|yaml)'
            ;;
        bounces | prune)
            _blast_files '@(yml|yaml)'
            ;;
        report)
            _blast_files json
            ;;
        journal)
            case $operands in
                0) _blast_words 'compact' ;;
                1) _blast_files '@(yml|yaml)' ;;
            esac
            ;;
        suppress)
            case $operands in
                0) _blast_files ;;
                1) _blast_words 'list export add remove import' ;;
                2) [[ ${ops[1]} == import ]] && _blast_files ;;
            esac
            ;;
    esac
}

# The words of $1 that start as the word being completed does.
_blast_words()
{
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur")
}

# Files (an extended glob of extensions, or -d for directories), through
# bash-completion's _filedir when it is there.
_blast_files()
{
    if declare -F _filedir >/dev/null; then
        _filedir "$@"
    elif [[ ${1-} == -d ]]; then
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
}

complete -F _blast blast
