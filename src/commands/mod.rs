//! One file per subcommand: each parses its flags and calls the library.

pub mod deploy;
pub mod lint;
pub mod migrate_node;
pub mod render;
pub mod status;

use anyhow::Result;

/// The async runtime of the commands that talk to hosts.
fn runtime() -> Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
