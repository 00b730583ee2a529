# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ha_setup_global_optspecs
    string join \n c/config= v/verbose q/quiet h/help V/version
end

function __fish_ha_setup_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ha_setup_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ha_setup_using_subcommand
    set -l cmd (__fish_ha_setup_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ha-setup -n "__fish_ha_setup_needs_command" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_needs_command" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "init" -d 'Set up replication from the primary to every replica: preflight, bundle, replication, link check'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "plan" -d 'Print the steps an operation would take on which host, touching nothing'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "status" -d 'Show roles, replication threads, lag and an end-to-end canary'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "verify" -d 'Compare every node\'s data with the primary\'s, chunk by chunk, while the application writes'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "history" -d 'Show the event history: what ran, when, on which host, and how it ended'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "switchover" -d 'Swap the roles of primary and replica, losing no transaction'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "sync" -d 'Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "recover" -d 'After losing the primary: promote the replica, reopen writes, rejoin the old primary'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "bundle" -d 'The replication bundle as a file: create, inspect, verify'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "config" -d 'Validate a config file, or print a commented example'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "man" -d 'Print the manual page (roff), made from the same definitions as --help'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -l primary -d 'The primary\'s SSH address, for a run without a config file (never asked then)' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -l secondary -d 'The secondary\'s SSH address, for a run without a config file (never asked then)' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand init" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand plan" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand plan" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand plan" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand plan" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand plan" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -l format -d 'Text for people, JSON for scripts, nagios for monitoring plugins' -r -f -a "text\t''
json\t''
nagios\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -l watch -d 'Repeat every SECS seconds until interrupted' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -l no-canary -d 'Read the nodes only; write no canary (for frequent monitoring)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand verify" -l format -d 'Text for people, JSON for scripts' -r -f -a "text\t''
json\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand verify" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand verify" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand verify" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand verify" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand verify" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -l format -d 'Text, or JSON lines for scripts' -r -f -a "text\t''
json\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -l to -d 'The replica to become the primary, as the config names it [default: the only replica]' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand switchover" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -l dry-run -d 'Read every node and print what would be copied where, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand sync" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "promote" -d 'Promote the replica; refused while the primary still takes writes (unless --force)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "unfence" -d 'Reopen writes on the primary after a planned restart (it comes back read-only)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "rejoin" -d 'Make the old primary a replica of the new one; refused if its history diverged'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "rebuild" -d 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "bootstrap" -d 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node\'s recovered position); refused while a node still runs in a primary component'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "restore" -d 'Make a fresh database install a primary from a bundle file (disaster recovery)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and not __fish_seen_subcommand_from promote unfence rejoin rebuild bootstrap restore help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -l force -d 'Go on although a safety check refused (the precondition table says what it saw)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from promote" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -l force -d 'Go on although a safety check refused (the precondition table says what it saw)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from unfence" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -l rewind -d 'PostgreSQL: rewind an old primary whose WAL holds transactions the new primary never got (pg_rewind). They are discarded from the database; its WAL is kept aside first'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -l force -d 'Go on although a safety check refused (the precondition table says what it saw)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rejoin" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -l from -d 'The node to copy from, when no node is provably the primary [default: the primary now]' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -l force -d 'Go on although a safety check refused (the precondition table says what it saw)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from rebuild" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -l force -d 'Go on although a safety check refused (the precondition table says what it saw)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from bootstrap" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -l bundle -d 'The bundle file (from `ha-setup bundle create`)' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -l target -d 'The node to restore onto, as the config names it' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -s y -l yes -d 'Answer yes to every question; never prompt'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -l force -d 'Restore even onto a node that runs a writable database (its data is moved aside)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -l dry-run -d 'Run the read-only checks and print what each step would run, changing nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from restore" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "promote" -d 'Promote the replica; refused while the primary still takes writes (unless --force)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "unfence" -d 'Reopen writes on the primary after a planned restart (it comes back read-only)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "rejoin" -d 'Make the old primary a replica of the new one; refused if its history diverged'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "rebuild" -d 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "bootstrap" -d 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node\'s recovered position); refused while a node still runs in a primary component'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "restore" -d 'Make a fresh database install a primary from a bundle file (disaster recovery)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand recover; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -f -a "create" -d 'Take a consistent snapshot of the primary and write it as a bundle file'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -f -a "inspect" -d 'Print a bundle\'s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -f -a "verify" -d 'Check every file of a bundle against its manifest (size and SHA-256)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -l out -d 'Where to write the bundle (a new file)' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -l format -d 'Text, or the manifest as JSON' -r -f -a "text\t''
json\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from inspect" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "create" -d 'Take a consistent snapshot of the primary and write it as a bundle file'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Print a bundle\'s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check every file of a bundle against its manifest (size and SHA-256)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -f -a "check" -d 'Check a config file and report every problem with its line and column'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -f -a "example" -d 'Print a commented example config that passes `config check`'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and not __fish_seen_subcommand_from check example help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from check" -l format -d 'Print the checked config as JSON (with defaults filled in)' -r -f -a "text\t''
json\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from check" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from example" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from example" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from example" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from example" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from example" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Check a config file and report every problem with its line and column'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "example" -d 'Print a commented example config that passes `config check`'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand completions" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand completions" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand completions" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand completions" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand completions" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand man" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand man" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand man" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand man" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand man" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "init" -d 'Set up replication from the primary to every replica: preflight, bundle, replication, link check'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "plan" -d 'Print the steps an operation would take on which host, touching nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "status" -d 'Show roles, replication threads, lag and an end-to-end canary'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "verify" -d 'Compare every node\'s data with the primary\'s, chunk by chunk, while the application writes'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "history" -d 'Show the event history: what ran, when, on which host, and how it ended'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "switchover" -d 'Swap the roles of primary and replica, losing no transaction'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "sync" -d 'Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "recover" -d 'After losing the primary: promote the replica, reopen writes, rejoin the old primary'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "bundle" -d 'The replication bundle as a file: create, inspect, verify'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "config" -d 'Validate a config file, or print a commented example'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "completions" -d 'Print a shell completion script'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "man" -d 'Print the manual page (roff), made from the same definitions as --help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status verify history switchover sync recover bundle config completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from recover" -f -a "promote" -d 'Promote the replica; refused while the primary still takes writes (unless --force)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from recover" -f -a "unfence" -d 'Reopen writes on the primary after a planned restart (it comes back read-only)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from recover" -f -a "rejoin" -d 'Make the old primary a replica of the new one; refused if its history diverged'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from recover" -f -a "rebuild" -d 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from recover" -f -a "bootstrap" -d 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node\'s recovered position); refused while a node still runs in a primary component'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from recover" -f -a "restore" -d 'Make a fresh database install a primary from a bundle file (disaster recovery)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "create" -d 'Take a consistent snapshot of the primary and write it as a bundle file'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "inspect" -d 'Print a bundle\'s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "verify" -d 'Check every file of a bundle against its manifest (size and SHA-256)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check a config file and report every problem with its line and column'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "example" -d 'Print a commented example config that passes `config check`'
