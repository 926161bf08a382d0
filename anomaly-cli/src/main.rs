//! The `anomaly` binary: everything lives in the library (`lib.rs`).

fn main() -> std::process::ExitCode {
    anomaly_cli::main()
}
