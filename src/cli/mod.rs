//! The `sweep` command line: argument parsing (clap) and one function per subcommand.

use std::process::ExitCode;

pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
