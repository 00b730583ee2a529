//! The one integration-test binary. Tests marked `#[ignore = "needs the lab"]` run against
//! the real hosts of tests/lab: `tests/run-all.sh` brings the lab up and runs them with
//! `--include-ignored`.

mod util;

mod bundle;
mod cli;
mod cluster_mariadb;
mod error_texts;
mod fence_mariadb;
mod galera_mariadb;
mod host_ssh;
mod init_mariadb;
mod lab_smoke;
mod pair_postgresql;
mod pp_mariadb;
mod recover_mariadb;
mod seed_mariadb;
mod seed_postgresql;
mod sync_files;
mod verify_mariadb;
mod verify_postgresql;
mod volume_mariadb;
mod wizard;
