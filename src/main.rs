//! The `haelk` binary: parse the command line, run it, report errors once.

fn main() -> std::process::ExitCode {
    haelk::cli::main()
}
