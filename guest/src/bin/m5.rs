fn main() {
    eprintln!("m5: not built yet");
    std::process::exit(1);
}
