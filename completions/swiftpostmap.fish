# fish completion for swiftpostmap. Install as
# /usr/share/fish/vendor_completions.d/swiftpostmap.fish (or ~/.config/fish/completions/).
# Only the name swiftpostmap is completed: a postmap or postalias symlink keeps the
# completion of Postfix's own commands.

# A map operand: [type:]file. After a type prefix, the file names following it; otherwise
# the type prefixes (fish adds the file names itself).
function __swiftpostmap_maps
    set -l token (commandline -ct)
    set -l prefix (string match -r -- '^(?:hash|btree|lmdb|cdb|texthash|pgsql):' $token)
    if test -n "$prefix"
        set -l rest (string sub -s (math (string length -- $prefix) + 1) -- $token)
        for path in (__fish_complete_path $rest)
            printf '%s%s\n' $prefix $path
        end
    else
        printf '%s\t%s\n' hash: 'Berkeley DB hash table (NAME.db)' \
            btree: 'Berkeley DB B-tree table (NAME.db)' \
            lmdb: 'LMDB table (NAME.lmdb)' \
            cdb: 'constant database (NAME.cdb)'
    end
end

# The argument of --export: pgsql: and then the pgsql_table(5) file to write.
function __swiftpostmap_pgsql
    set -l token (commandline -ct)
    set -l token (string replace -r -- '^--export=' '' $token)
    if string match -q -- 'pgsql:*' $token
        set -l rest (string sub -s 7 -- $token)
        for path in (__fish_complete_path $rest)
            printf 'pgsql:%s\n' $path
        end
    else
        printf '%s\t%s\n' pgsql: 'pgsql_table(5) file to write'
    end
end

# True when --aliases is on the command line (postalias's options apply).
function __swiftpostmap_aliases
    contains -- --aliases (commandline -opc)
end

complete -c swiftpostmap -a '(__swiftpostmap_maps)'

# postmap's options (postalias's with --aliases).
complete -c swiftpostmap -s b -n 'not __swiftpostmap_aliases' -d 'With -q -, look up the body lines of a message on stdin'
complete -c swiftpostmap -s c -x -a '(__fish_complete_directories (commandline -ct))' -d 'Read main.cf from this directory'
complete -c swiftpostmap -s d -x -d 'Delete a key from every table named (- reads keys from stdin)'
complete -c swiftpostmap -s f -d 'Do not fold keys to lower case'
complete -c swiftpostmap -s F -n 'not __swiftpostmap_aliases' -d 'Values are file names: store their contents base64-encoded'
complete -c swiftpostmap -s h -n 'not __swiftpostmap_aliases' -d 'With -q -, look up the header lines of a message on stdin'
complete -c swiftpostmap -s i -d 'Add entries read from stdin to an existing table'
complete -c swiftpostmap -s j -d 'Print -q and -s results as JSON'
complete -c swiftpostmap -s m -n 'not __swiftpostmap_aliases' -d 'With -b or -h, follow the MIME structure of the message'
complete -c swiftpostmap -s n -d 'No terminating NUL in keys and values'
complete -c swiftpostmap -s N -d 'A terminating NUL in keys and values'
complete -c swiftpostmap -s o -d 'As root, keep root privileges while building'
complete -c swiftpostmap -s p -d 'New tables get mode 0644'
complete -c swiftpostmap -s q -x -d 'Look up a key (- reads keys from stdin)'
complete -c swiftpostmap -s r -d 'Duplicate keys: the last value wins silently'
complete -c swiftpostmap -s s -d 'List every entry of the first table'
complete -c swiftpostmap -s u -d 'No UTF-8 handling of keys'
complete -c swiftpostmap -s U -n 'not __swiftpostmap_aliases' -d 'With -b or -h, keep the UTF-8 handling of keys'
complete -c swiftpostmap -s v -d 'Accepted; no verbose output'
complete -c swiftpostmap -s w -d 'Duplicate keys: the first value wins silently'

# The long-option modes and their options.
complete -c swiftpostmap -l aliases -d 'Behave as postalias'
complete -c swiftpostmap -l lint -d 'Check map sources as Postfix will use them'
complete -c swiftpostmap -l kind -x -a 'virtual vmailbox aliases transport relocated canonical access generic' -d 'What the linted maps are'
complete -c swiftpostmap -l werror -d 'With --lint, warnings also fail'
complete -c swiftpostmap -l resolve -d 'Show what Postfix does with mail to the addresses given'
complete -c swiftpostmap -l virtual -r -a '(__swiftpostmap_maps)' -d 'A virtual alias map for --resolve and --test'
complete -c swiftpostmap -l vmailbox -r -a '(__swiftpostmap_maps)' -d 'A virtual mailbox map for --resolve and --test'
complete -c swiftpostmap -l alias-map -r -a '(__swiftpostmap_maps)' -d 'An aliases map for --resolve and --test'
complete -c swiftpostmap -l passwd -d "Local users are this machine's passwd users"
complete -c swiftpostmap -l test -r -F -d 'Check an expectations file'
complete -c swiftpostmap -l verify -d 'Check that a table holds what its source compiles to'
complete -c swiftpostmap -l bytes -d 'With --verify, compare bytes with a reproducible build'
complete -c swiftpostmap -l diff -d 'Show the records two maps differ in'
complete -c swiftpostmap -l check -d 'Check the integrity of table files'
complete -c swiftpostmap -l scan-config -d 'List the Berkeley DB tables of the configuration'
complete -c swiftpostmap -l sync -d 'Build every table of the configuration that is out of date'
complete -c swiftpostmap -l dry-run -d 'With --sync, only list what would be built'
complete -c swiftpostmap -l to -x -a 'lmdb cdb' -d 'With --sync, build the Berkeley DB tables as this type'
complete -c swiftpostmap -l export -x -a '(__swiftpostmap_pgsql)' -d 'Load a source into a PostgreSQL table and write its pgsql_table(5) file'
complete -c swiftpostmap -l conninfo -x -d 'With --export, the libpq connection string (host=... dbname=... user=...)'
complete -c swiftpostmap -l table -x -d 'With --export, the PostgreSQL table to fill'
complete -c swiftpostmap -l json -d 'Print JSON Lines'
complete -c swiftpostmap -l main-cf -r -F -d 'Read this main.cf'
complete -c swiftpostmap -l progress -d 'Show a progress line on stderr even when it is not a terminal'
complete -c swiftpostmap -l reproducible -d 'Build byte-identical tables for the same source and options'
complete -c swiftpostmap -l help -d 'Print a summary of the options'
complete -c swiftpostmap -l version -d 'Print the version'
