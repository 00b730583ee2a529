
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
            cand init 'Set up replication from the primary to every replica: preflight, bundle, replication, link check'
            cand plan 'Print the steps an operation would take on which host, touching nothing'
            cand status 'Show roles, replication threads, lag and an end-to-end canary'
            cand verify 'Compare every node''s data with the primary''s, chunk by chunk, while the application writes'
            cand history 'Show the event history: what ran, when, on which host, and how it ended'
            cand switchover 'Swap the roles of primary and replica, losing no transaction'
            cand sync 'Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary'
            cand recover 'After losing the primary: promote the replica, reopen writes, rejoin the old primary'
            cand bundle 'The replication bundle as a file: create, inspect, verify'
            cand config 'Validate a config file, or print a commented example'
            cand completions 'Print a shell completion script'
            cand man 'Print the manual page (roff), made from the same definitions as --help'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;init'= {
            cand --primary 'The primary''s SSH address, for a run without a config file (never asked then)'
            cand --secondary 'The secondary''s SSH address, for a run without a config file (never asked then)'
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;plan'= {
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
        &'ha-setup;status'= {
            cand --format 'Text for people, JSON for scripts, nagios for monitoring plugins'
            cand --watch 'Repeat every SECS seconds until interrupted'
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand --no-canary 'Read the nodes only; write no canary (for frequent monitoring)'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;verify'= {
            cand --format 'Text for people, JSON for scripts'
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
        &'ha-setup;history'= {
            cand --format 'Text, or JSON lines for scripts'
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
        &'ha-setup;switchover'= {
            cand --to 'The replica to become the primary, as the config names it [default: the only replica]'
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;sync'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --dry-run 'Read every node and print what would be copied where, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover'= {
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
            cand promote 'Promote the replica; refused while the primary still takes writes (unless --force)'
            cand unfence 'Reopen writes on the primary after a planned restart (it comes back read-only)'
            cand rejoin 'Make the old primary a replica of the new one; refused if its history diverged'
            cand rebuild 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)'
            cand bootstrap 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node''s recovered position); refused while a node still runs in a primary component'
            cand restore 'Make a fresh database install a primary from a bundle file (disaster recovery)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;recover;promote'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --force 'Go on although a safety check refused (the precondition table says what it saw)'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover;unfence'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --force 'Go on although a safety check refused (the precondition table says what it saw)'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover;rejoin'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand --rewind 'PostgreSQL: rewind an old primary whose WAL holds transactions the new primary never got (pg_rewind). They are discarded from the database; its WAL is kept aside first'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --force 'Go on although a safety check refused (the precondition table says what it saw)'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover;rebuild'= {
            cand --from 'The node to copy from, when no node is provably the primary [default: the primary now]'
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --force 'Go on although a safety check refused (the precondition table says what it saw)'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover;bootstrap'= {
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --force 'Go on although a safety check refused (the precondition table says what it saw)'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover;restore'= {
            cand --bundle 'The bundle file (from `ha-setup bundle create`)'
            cand --target 'The node to restore onto, as the config names it'
            cand -c 'Config file [default: ./ha-setup.toml]'
            cand --config 'Config file [default: ./ha-setup.toml]'
            cand -y 'Answer yes to every question; never prompt'
            cand --yes 'Answer yes to every question; never prompt'
            cand --force 'Restore even onto a node that runs a writable database (its data is moved aside)'
            cand --dry-run 'Run the read-only checks and print what each step would run, changing nothing'
            cand -v 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand --verbose 'Say more: -v shows what runs on which host, -vv adds debug detail'
            cand -q 'Say only what is asked for and errors'
            cand --quiet 'Say only what is asked for and errors'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'ha-setup;recover;help'= {
            cand promote 'Promote the replica; refused while the primary still takes writes (unless --force)'
            cand unfence 'Reopen writes on the primary after a planned restart (it comes back read-only)'
            cand rejoin 'Make the old primary a replica of the new one; refused if its history diverged'
            cand rebuild 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)'
            cand bootstrap 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node''s recovered position); refused while a node still runs in a primary component'
            cand restore 'Make a fresh database install a primary from a bundle file (disaster recovery)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;recover;help;promote'= {
        }
        &'ha-setup;recover;help;unfence'= {
        }
        &'ha-setup;recover;help;rejoin'= {
        }
        &'ha-setup;recover;help;rebuild'= {
        }
        &'ha-setup;recover;help;bootstrap'= {
        }
        &'ha-setup;recover;help;restore'= {
        }
        &'ha-setup;recover;help;help'= {
        }
        &'ha-setup;bundle'= {
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
            cand create 'Take a consistent snapshot of the primary and write it as a bundle file'
            cand inspect 'Print a bundle''s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)'
            cand verify 'Check every file of a bundle against its manifest (size and SHA-256)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;bundle;create'= {
            cand --out 'Where to write the bundle (a new file)'
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
        &'ha-setup;bundle;inspect'= {
            cand --format 'Text, or the manifest as JSON'
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
        &'ha-setup;bundle;verify'= {
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
        &'ha-setup;bundle;help'= {
            cand create 'Take a consistent snapshot of the primary and write it as a bundle file'
            cand inspect 'Print a bundle''s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)'
            cand verify 'Check every file of a bundle against its manifest (size and SHA-256)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;bundle;help;create'= {
        }
        &'ha-setup;bundle;help;inspect'= {
        }
        &'ha-setup;bundle;help;verify'= {
        }
        &'ha-setup;bundle;help;help'= {
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
        &'ha-setup;man'= {
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
            cand init 'Set up replication from the primary to every replica: preflight, bundle, replication, link check'
            cand plan 'Print the steps an operation would take on which host, touching nothing'
            cand status 'Show roles, replication threads, lag and an end-to-end canary'
            cand verify 'Compare every node''s data with the primary''s, chunk by chunk, while the application writes'
            cand history 'Show the event history: what ran, when, on which host, and how it ended'
            cand switchover 'Swap the roles of primary and replica, losing no transaction'
            cand sync 'Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary'
            cand recover 'After losing the primary: promote the replica, reopen writes, rejoin the old primary'
            cand bundle 'The replication bundle as a file: create, inspect, verify'
            cand config 'Validate a config file, or print a commented example'
            cand completions 'Print a shell completion script'
            cand man 'Print the manual page (roff), made from the same definitions as --help'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'ha-setup;help;init'= {
        }
        &'ha-setup;help;plan'= {
        }
        &'ha-setup;help;status'= {
        }
        &'ha-setup;help;verify'= {
        }
        &'ha-setup;help;history'= {
        }
        &'ha-setup;help;switchover'= {
        }
        &'ha-setup;help;sync'= {
        }
        &'ha-setup;help;recover'= {
            cand promote 'Promote the replica; refused while the primary still takes writes (unless --force)'
            cand unfence 'Reopen writes on the primary after a planned restart (it comes back read-only)'
            cand rejoin 'Make the old primary a replica of the new one; refused if its history diverged'
            cand rebuild 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)'
            cand bootstrap 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node''s recovered position); refused while a node still runs in a primary component'
            cand restore 'Make a fresh database install a primary from a bundle file (disaster recovery)'
        }
        &'ha-setup;help;recover;promote'= {
        }
        &'ha-setup;help;recover;unfence'= {
        }
        &'ha-setup;help;recover;rejoin'= {
        }
        &'ha-setup;help;recover;rebuild'= {
        }
        &'ha-setup;help;recover;bootstrap'= {
        }
        &'ha-setup;help;recover;restore'= {
        }
        &'ha-setup;help;bundle'= {
            cand create 'Take a consistent snapshot of the primary and write it as a bundle file'
            cand inspect 'Print a bundle''s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)'
            cand verify 'Check every file of a bundle against its manifest (size and SHA-256)'
        }
        &'ha-setup;help;bundle;create'= {
        }
        &'ha-setup;help;bundle;inspect'= {
        }
        &'ha-setup;help;bundle;verify'= {
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
        &'ha-setup;help;man'= {
        }
        &'ha-setup;help;help'= {
        }
    ]
    $completions[$command]
}
