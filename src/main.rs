//! The `relgate` binary: parse arguments, call the library, map the outcome to an exit code.

fn main() {
    std::process::exit(relgate::exit::CONFIG);
}
