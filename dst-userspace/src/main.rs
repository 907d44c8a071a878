//! The `dst` command line: one module per verb under `cli/`.
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
