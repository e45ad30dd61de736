//! The `eplb` command line. See `eplb --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
