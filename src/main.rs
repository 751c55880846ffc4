fn main() {
    println!("callcap {}", env!("CARGO_PKG_VERSION"));
}
