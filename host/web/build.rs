// The assets are embedded at compile time: rebuild when any of them changes or a new
// one appears (rustc alone only tracks the files it already included).
fn main() {
    println!("cargo:rerun-if-changed=assets");
}
