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
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "init" -d 'Set up primary → secondary replication: preflight, bundle, replication, link check'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "plan" -d 'Print the steps an operation would take on which host, touching nothing'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "status" -d 'Show roles, replication threads, lag and an end-to-end canary'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "history" -d 'Show the event history: what ran, when, on which host, and how it ended'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "bundle" -d 'The replication bundle as a file: create, inspect, verify'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "config" -d 'Validate a config file, or print a commented example'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
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
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand status" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -l format -d 'Text, or JSON lines for scripts' -r -f -a "text\t''
json\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand history" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -f -a "create" -d 'Take a consistent snapshot of the primary and write it as a bundle file'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -f -a "inspect" -d 'Print a bundle\'s manifest: engine, version, source host, position, files'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -f -a "verify" -d 'Check every file of a bundle against its manifest (size and SHA-256)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -f -a "pack" -d 'Write a directory as a bundle stream on stdout (run by ha-setup on the primary)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -f -a "unpack" -d 'Read a bundle stream on stdin into a new directory, checking every file (run by ha-setup on the secondary); prints the manifest as one line of JSON'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and not __fish_seen_subcommand_from create inspect verify pack unpack help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from create" -l out -d 'Where to write the bundle (a .zip file)' -r -F
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
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -l dir -d 'The backup directory (a prepared mariadb-backup target)' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -l engine -d 'The engine that made the backup' -r -f -a "mariadb\t''
postgresql\t''"
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -l server-version -d 'The server version, as the server reports it' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -l source-host -d 'The primary\'s name, for the manifest' -r
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from pack" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from unpack" -l into -d 'Where to unpack: created if missing, must be empty if it exists' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from unpack" -s c -l config -d 'Config file [default: ./ha-setup.toml]' -r -F
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from unpack" -s v -l verbose -d 'Say more: -v shows what runs on which host, -vv adds debug detail'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from unpack" -s q -l quiet -d 'Say only what is asked for and errors'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from unpack" -s h -l help -d 'Print help'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from unpack" -s V -l version -d 'Print version'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "create" -d 'Take a consistent snapshot of the primary and write it as a bundle file'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Print a bundle\'s manifest: engine, version, source host, position, files'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check every file of a bundle against its manifest (size and SHA-256)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "pack" -d 'Write a directory as a bundle stream on stdout (run by ha-setup on the primary)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "unpack" -d 'Read a bundle stream on stdin into a new directory, checking every file (run by ha-setup on the secondary); prints the manifest as one line of JSON'
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
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "init" -d 'Set up primary → secondary replication: preflight, bundle, replication, link check'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "plan" -d 'Print the steps an operation would take on which host, touching nothing'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "status" -d 'Show roles, replication threads, lag and an end-to-end canary'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "history" -d 'Show the event history: what ran, when, on which host, and how it ended'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "bundle" -d 'The replication bundle as a file: create, inspect, verify'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "config" -d 'Validate a config file, or print a commented example'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from init plan status history bundle config completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "create" -d 'Take a consistent snapshot of the primary and write it as a bundle file'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "inspect" -d 'Print a bundle\'s manifest: engine, version, source host, position, files'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "verify" -d 'Check every file of a bundle against its manifest (size and SHA-256)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "pack" -d 'Write a directory as a bundle stream on stdout (run by ha-setup on the primary)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "unpack" -d 'Read a bundle stream on stdin into a new directory, checking every file (run by ha-setup on the secondary); prints the manifest as one line of JSON'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check a config file and report every problem with its line and column'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "example" -d 'Print a commented example config that passes `config check`'
