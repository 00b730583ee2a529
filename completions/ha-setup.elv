
use builtin;
use str;

set edit:completion:arg-completer[ha-setup] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'ha-setup'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'ha-setup'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand config 'Validate a config file, or print a commented example'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;config'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand check 'Check a config file and report every problem with its line and column'
            cand example 'Print a commented example config that passes `config check`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;config;check'= {
            cand --format 'Print the checked config as JSON (with defaults filled in)'
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;config;example'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;config;help'= {
            cand check 'Check a config file and report every problem with its line and column'
            cand example 'Print a commented example config that passes `config check`'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;config;help;check'= {
        }
        &'ha-setup;config;help;example'= {
        }
        &'ha-setup;config;help;help'= {
        }
        &'ha-setup;completions'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;help'= {
            cand config 'Validate a config file, or print a commented example'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;help;config'= {
            cand check 'Check a config file and report every problem with its line and column'
            cand example 'Print a commented example config that passes `config check`'
        }
        &'ha-setup;help;config;check'= {
        }
        &'ha-setup;help;config;example'= {
        }
        &'ha-setup;help;completions'= {
        }
        &'ha-setup;help;help'= {
        }
    ]
    $completions[$command]
}
