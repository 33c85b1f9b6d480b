fn main() {
    // layout.rs asserts its values at compile time unless this cfg is set;
    // the probe prints them instead, so a wrong value is reported, not just failed.
    println!("cargo::rustc-check-cfg=cfg(pipesensor_layout_probe)");
    println!("cargo:rustc-cfg=pipesensor_layout_probe");
}
