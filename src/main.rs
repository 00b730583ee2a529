fn main() -> std::process::ExitCode {
    ha_setup::run().into()
}
