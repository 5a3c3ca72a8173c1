fn main() {
    eprintln!("simctl-init: not built yet");
    std::process::exit(1);
}
