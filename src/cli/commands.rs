//! What each subcommand does.
use super::Cli;
pub fn run(_cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    todo!()
}
