# bash completion for swiftpostmap                          -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/swiftpostmap, or source it from
# ~/.bashrc. Only the name swiftpostmap is completed: a postmap or postalias symlink keeps
# whatever completion Postfix's own commands have.
#
# Self-contained: it needs bash 4 and nothing from the bash-completion package.

_swiftpostmap_long_options="--aliases --lint --kind --werror --resolve --virtual --vmailbox
 --alias-map --passwd --test --verify --bytes --diff --check --scan-config --sync --dry-run
 --to --export --conninfo --table --json --main-cf --progress --reproducible --help --version"
_swiftpostmap_postmap_short="-b -c -d -f -F -h -i -j -m -n -N -o -p -q -r -s -u -U -v -w"
_swiftpostmap_postalias_short="-c -d -f -i -j -n -N -o -p -q -r -s -u -v -w"
_swiftpostmap_kinds="virtual vmailbox aliases transport relocated canonical access generic"
_swiftpostmap_types="hash: btree: lmdb: cdb:"

# Adds file names starting with $1 to COMPREPLY, directories with a trailing slash.
_swiftpostmap_files() {
    local path
    local -a found
    mapfile -t found < <(compgen -f -- "$1")
    for path in "${found[@]}"; do
        if [[ -d $path ]]; then
            COMPREPLY+=("$path/")
        else
            COMPREPLY+=("$path")
        fi
    done
}

# Adds directory names starting with $1 to COMPREPLY, each with a trailing slash.
_swiftpostmap_directories() {
    local path
    local -a found
    mapfile -t found < <(compgen -d -- "$1")
    for path in "${found[@]}"; do
        COMPREPLY+=("$path/")
    done
}

# A map operand: [type:]file. With a type prefix, the file names after it; without one,
# the type prefixes and the file names.
_swiftpostmap_maps() {
    local cur=$1 path
    if [[ $cur == *:* ]]; then
        local prefix=${cur%%:*}: rest=${cur#*:}
        local -a saved=("${COMPREPLY[@]}")
        COMPREPLY=()
        _swiftpostmap_files "$rest"
        local -a files=("${COMPREPLY[@]}")
        COMPREPLY=("${saved[@]}")
        for path in "${files[@]}"; do
            COMPREPLY+=("$prefix$path")
        done
    else
        local type
        for type in $_swiftpostmap_types; do
            [[ $type == "$cur"* ]] && COMPREPLY+=("$type")
        done
        _swiftpostmap_files "$cur"
    fi
}

# The argument of --export: pgsql: and then a file name (the pgsql_table(5) file to write).
_swiftpostmap_pgsql() {
    local cur=$1
    if [[ $cur == pgsql:* ]]; then
        _swiftpostmap_maps "$cur"
    elif [[ pgsql: == "$cur"* ]]; then
        COMPREPLY+=("pgsql:")
    fi
}

_swiftpostmap() {
    COMPREPLY=()
    local cword=${COMP_CWORD:-0}

    # bash splits words at the colons of "hash:/etc/postfix/virtual" and at the "=" of
    # "--kind=virtual" (both are in COMP_WORDBREAKS): put such words back together. words[] holds the whole words,
    # cur the one being completed, prev the one before it.
    local -a words=()
    local i word cur="" joined=false
    for ((i = 0; i <= cword && i < ${#COMP_WORDS[@]}; i++)); do
        word=${COMP_WORDS[i]}
        if ((${#words[@]} > 0)) && { [[ $word == [:=]* ]] || $joined; }; then
            words[${#words[@]} - 1]+=$word
        else
            words+=("$word")
        fi
        [[ $word == *[:=] ]] && joined=true || joined=false
    done
    ((cword < ${#COMP_WORDS[@]})) || words+=("")
    cur=${words[${#words[@]} - 1]}
    local prev=""
    ((${#words[@]} > 1)) && prev=${words[${#words[@]} - 2]}

    # Options that take an argument.
    case $prev in
    -c)
        _swiftpostmap_directories "$cur"
        ;;
    --kind)
        mapfile -t COMPREPLY < <(compgen -W "$_swiftpostmap_kinds" -- "$cur")
        ;;
    --to)
        mapfile -t COMPREPLY < <(compgen -W "lmdb cdb" -- "$cur")
        ;;
    --main-cf | --test)
        _swiftpostmap_files "$cur"
        ;;
    --virtual | --vmailbox | --alias-map)
        _swiftpostmap_maps "$cur"
        ;;
    --export)
        _swiftpostmap_pgsql "$cur"
        ;;
    -q | -d | --conninfo | --table)
        # A key (or "-" for standard input), a libpq connection string ("host=... dbname=...
        # user=..." or a postgresql:// URI) or a table name: nothing to offer.
        return 0
        ;;
    *)
        if [[ $cur == --* ]]; then
            # --kind=VALUE, --to=VALUE and --export=pgsql:FILE.
            case $cur in
            --kind=*)
                mapfile -t COMPREPLY < <(compgen -P --kind= -W "$_swiftpostmap_kinds" -- "${cur#--kind=}")
                ;;
            --to=*)
                mapfile -t COMPREPLY < <(compgen -P --to= -W "lmdb cdb" -- "${cur#--to=}")
                ;;
            --export=*)
                _swiftpostmap_pgsql "${cur#--export=}"
                for i in "${!COMPREPLY[@]}"; do
                    COMPREPLY[i]=--export=${COMPREPLY[i]}
                done
                ;;
            --conninfo=* | --table=*)
                return 0
                ;;
            *)
                mapfile -t COMPREPLY < <(compgen -W "$_swiftpostmap_long_options" -- "$cur")
                ;;
            esac
        elif [[ $cur == -* ]]; then
            local short=$_swiftpostmap_postmap_short
            local w
            for w in "${words[@]}"; do
                [[ $w == --aliases ]] && short=$_swiftpostmap_postalias_short
            done
            mapfile -t COMPREPLY < <(compgen -W "$short $_swiftpostmap_long_options" -- "$cur")
        else
            _swiftpostmap_maps "$cur"
        fi
        ;;
    esac

    # bash replaces only COMP_WORDS[COMP_CWORD], the part after the last colon or "=":
    # drop what comes before it from every candidate.
    local current=""
    ((cword < ${#COMP_WORDS[@]})) && current=${COMP_WORDS[cword]}
    local lead=${cur%"$current"}
    if [[ -n $lead ]]; then
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${COMPREPLY[i]#"$lead"}
        done
    fi

    # No space after a type prefix ("hash:") or a directory ("/etc/postfix/").
    if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *[:/=] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}

complete -F _swiftpostmap swiftpostmap
