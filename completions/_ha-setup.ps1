
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'ha-setup' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'ha-setup'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'ha-setup' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Set up replication from the primary to every replica: preflight, bundle, replication, link check')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Print the steps an operation would take on which host, touching nothing')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show roles, replication threads, lag and an end-to-end canary')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Compare every node''s data with the primary''s, chunk by chunk, while the application writes')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show the event history: what ran, when, on which host, and how it ended')
            [CompletionResult]::new('switchover', 'switchover', [CompletionResultType]::ParameterValue, 'Swap the roles of primary and replica, losing no transaction')
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary')
            [CompletionResult]::new('recover', 'recover', [CompletionResultType]::ParameterValue, 'After losing the primary: promote the replica, reopen writes, rejoin the old primary')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'The replication bundle as a file: create, inspect, verify')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Validate a config file, or print a commented example')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff), made from the same definitions as --help')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;init' {
            [CompletionResult]::new('--primary', '--primary', [CompletionResultType]::ParameterName, 'The primary''s SSH address, for a run without a config file (never asked then)')
            [CompletionResult]::new('--secondary', '--secondary', [CompletionResultType]::ParameterName, 'The secondary''s SSH address, for a run without a config file (never asked then)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;plan' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;status' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Text for people, JSON for scripts, nagios for monitoring plugins')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Repeat every SECS seconds until interrupted')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--no-canary', '--no-canary', [CompletionResultType]::ParameterName, 'Read the nodes only; write no canary (for frequent monitoring)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;verify' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Text for people, JSON for scripts')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;history' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Text, or JSON lines for scripts')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;switchover' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The replica to become the primary, as the config names it [default: the only replica]')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;sync' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Read every node and print what would be copied where, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('promote', 'promote', [CompletionResultType]::ParameterValue, 'Promote the replica; refused while the primary still takes writes (unless --force)')
            [CompletionResult]::new('unfence', 'unfence', [CompletionResultType]::ParameterValue, 'Reopen writes on the primary after a planned restart (it comes back read-only)')
            [CompletionResult]::new('rejoin', 'rejoin', [CompletionResultType]::ParameterValue, 'Make the old primary a replica of the new one; refused if its history diverged')
            [CompletionResult]::new('rebuild', 'rebuild', [CompletionResultType]::ParameterValue, 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)')
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node''s recovered position); refused while a node still runs in a primary component')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Make a fresh database install a primary from a bundle file (disaster recovery)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;recover;promote' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Go on although a safety check refused (the precondition table says what it saw)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover;unfence' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Go on although a safety check refused (the precondition table says what it saw)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover;rejoin' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--rewind', '--rewind', [CompletionResultType]::ParameterName, 'PostgreSQL: rewind an old primary whose WAL holds transactions the new primary never got (pg_rewind). They are discarded from the database; its WAL is kept aside first')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Go on although a safety check refused (the precondition table says what it saw)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover;rebuild' {
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'The node to copy from, when no node is provably the primary [default: the primary now]')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Go on although a safety check refused (the precondition table says what it saw)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover;bootstrap' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Go on although a safety check refused (the precondition table says what it saw)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover;restore' {
            [CompletionResult]::new('--bundle', '--bundle', [CompletionResultType]::ParameterName, 'The bundle file (from `ha-setup bundle create`)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'The node to restore onto, as the config names it')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Answer yes to every question; never prompt')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Restore even onto a node that runs a writable database (its data is moved aside)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Run the read-only checks and print what each step would run, changing nothing')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;recover;help' {
            [CompletionResult]::new('promote', 'promote', [CompletionResultType]::ParameterValue, 'Promote the replica; refused while the primary still takes writes (unless --force)')
            [CompletionResult]::new('unfence', 'unfence', [CompletionResultType]::ParameterValue, 'Reopen writes on the primary after a planned restart (it comes back read-only)')
            [CompletionResult]::new('rejoin', 'rejoin', [CompletionResultType]::ParameterValue, 'Make the old primary a replica of the new one; refused if its history diverged')
            [CompletionResult]::new('rebuild', 'rebuild', [CompletionResultType]::ParameterValue, 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)')
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node''s recovered position); refused while a node still runs in a primary component')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Make a fresh database install a primary from a bundle file (disaster recovery)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;recover;help;promote' {
            break
        }
        'ha-setup;recover;help;unfence' {
            break
        }
        'ha-setup;recover;help;rejoin' {
            break
        }
        'ha-setup;recover;help;rebuild' {
            break
        }
        'ha-setup;recover;help;bootstrap' {
            break
        }
        'ha-setup;recover;help;restore' {
            break
        }
        'ha-setup;recover;help;help' {
            break
        }
        'ha-setup;bundle' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Take a consistent snapshot of the primary and write it as a bundle file')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Print a bundle''s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every file of a bundle against its manifest (size and SHA-256)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;bundle;create' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Where to write the bundle (a new file)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;bundle;inspect' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Text, or the manifest as JSON')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;bundle;verify' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;bundle;help' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Take a consistent snapshot of the primary and write it as a bundle file')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Print a bundle''s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every file of a bundle against its manifest (size and SHA-256)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;bundle;help;create' {
            break
        }
        'ha-setup;bundle;help;inspect' {
            break
        }
        'ha-setup;bundle;help;verify' {
            break
        }
        'ha-setup;bundle;help;help' {
            break
        }
        'ha-setup;config' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check a config file and report every problem with its line and column')
            [CompletionResult]::new('example', 'example', [CompletionResultType]::ParameterValue, 'Print a commented example config that passes `config check`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;config;check' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Print the checked config as JSON (with defaults filled in)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;config;example' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;config;help' {
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check a config file and report every problem with its line and column')
            [CompletionResult]::new('example', 'example', [CompletionResultType]::ParameterValue, 'Print a commented example config that passes `config check`')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;config;help;check' {
            break
        }
        'ha-setup;config;help;example' {
            break
        }
        'ha-setup;config;help;help' {
            break
        }
        'ha-setup;completions' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;man' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file [default: ./ha-setup.toml]')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Say more: -v shows what runs on which host, -vv adds debug detail')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Say only what is asked for and errors')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'ha-setup;help' {
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Set up replication from the primary to every replica: preflight, bundle, replication, link check')
            [CompletionResult]::new('plan', 'plan', [CompletionResultType]::ParameterValue, 'Print the steps an operation would take on which host, touching nothing')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show roles, replication threads, lag and an end-to-end canary')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Compare every node''s data with the primary''s, chunk by chunk, while the application writes')
            [CompletionResult]::new('history', 'history', [CompletionResultType]::ParameterValue, 'Show the event history: what ran, when, on which host, and how it ended')
            [CompletionResult]::new('switchover', 'switchover', [CompletionResultType]::ParameterValue, 'Swap the roles of primary and replica, losing no transaction')
            [CompletionResult]::new('sync', 'sync', [CompletionResultType]::ParameterValue, 'Make the [[sync_files]] identical on every node: bytes, mode, owner, from the primary')
            [CompletionResult]::new('recover', 'recover', [CompletionResultType]::ParameterValue, 'After losing the primary: promote the replica, reopen writes, rejoin the old primary')
            [CompletionResult]::new('bundle', 'bundle', [CompletionResultType]::ParameterValue, 'The replication bundle as a file: create, inspect, verify')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Validate a config file, or print a commented example')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Print the manual page (roff), made from the same definitions as --help')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'ha-setup;help;init' {
            break
        }
        'ha-setup;help;plan' {
            break
        }
        'ha-setup;help;status' {
            break
        }
        'ha-setup;help;verify' {
            break
        }
        'ha-setup;help;history' {
            break
        }
        'ha-setup;help;switchover' {
            break
        }
        'ha-setup;help;sync' {
            break
        }
        'ha-setup;help;recover' {
            [CompletionResult]::new('promote', 'promote', [CompletionResultType]::ParameterValue, 'Promote the replica; refused while the primary still takes writes (unless --force)')
            [CompletionResult]::new('unfence', 'unfence', [CompletionResultType]::ParameterValue, 'Reopen writes on the primary after a planned restart (it comes back read-only)')
            [CompletionResult]::new('rejoin', 'rejoin', [CompletionResultType]::ParameterValue, 'Make the old primary a replica of the new one; refused if its history diverged')
            [CompletionResult]::new('rebuild', 'rebuild', [CompletionResultType]::ParameterValue, 'Re-seed a replica from the primary with a fresh bundle (old data moved aside)')
            [CompletionResult]::new('bootstrap', 'bootstrap', [CompletionResultType]::ParameterValue, 'Galera, after every node stopped or crashed: start the cluster again from the node with the most (each node''s recovered position); refused while a node still runs in a primary component')
            [CompletionResult]::new('restore', 'restore', [CompletionResultType]::ParameterValue, 'Make a fresh database install a primary from a bundle file (disaster recovery)')
            break
        }
        'ha-setup;help;recover;promote' {
            break
        }
        'ha-setup;help;recover;unfence' {
            break
        }
        'ha-setup;help;recover;rejoin' {
            break
        }
        'ha-setup;help;recover;rebuild' {
            break
        }
        'ha-setup;help;recover;bootstrap' {
            break
        }
        'ha-setup;help;recover;restore' {
            break
        }
        'ha-setup;help;bundle' {
            [CompletionResult]::new('create', 'create', [CompletionResultType]::ParameterValue, 'Take a consistent snapshot of the primary and write it as a bundle file')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Print a bundle''s manifest: engine, version, source host, position, files (read from its end; the data is checked by `verify`)')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every file of a bundle against its manifest (size and SHA-256)')
            break
        }
        'ha-setup;help;bundle;create' {
            break
        }
        'ha-setup;help;bundle;inspect' {
            break
        }
        'ha-setup;help;bundle;verify' {
            break
        }
        'ha-setup;help;config' {
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check a config file and report every problem with its line and column')
            [CompletionResult]::new('example', 'example', [CompletionResultType]::ParameterValue, 'Print a commented example config that passes `config check`')
            break
        }
        'ha-setup;help;config;check' {
            break
        }
        'ha-setup;help;config;example' {
            break
        }
        'ha-setup;help;completions' {
            break
        }
        'ha-setup;help;man' {
            break
        }
        'ha-setup;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
