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
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "config" -d 'Validate a config file, or print a commented example'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c ha-setup -n "__fish_ha_setup_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
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
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from config completions help" -f -a "config" -d 'Validate a config file, or print a commented example'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from config completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and not __fish_seen_subcommand_from config completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Check a config file and report every problem with its line and column'
complete -c ha-setup -n "__fish_ha_setup_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "example" -d 'Print a commented example config that passes `config check`'
