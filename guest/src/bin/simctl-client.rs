fn main() {
    eprintln!("simctl-client: not built yet");
    std::process::exit(1);
}
