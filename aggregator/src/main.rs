//! `vedette-aggregator`: the CLI.

fn main() {
    eprintln!("vedette-aggregator: not wired yet");
    std::process::exit(2);
}
