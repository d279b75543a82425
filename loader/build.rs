// SPDX-License-Identifier: MIT OR Apache-2.0
//! Freestanding link for the loader bins with the host target's precompiled `core`
//! (see ../shared/design/TOOLCHAIN.md). `rustc-link-arg-bins` scopes every flag to this
//! package's bins, so build scripts, the lib and host tools link normally.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    for f in ["linker/pvh-boot.ld", "linker/pv-boot.ld"] {
        println!("cargo:rerun-if-changed={dir}/../{f}");
    }
    println!("cargo:rerun-if-changed=src/arch/x86_64/pvh.S");
    println!("cargo:rerun-if-changed=src/arch/x86_64/pv.S");
    for a in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie", // rustc passes -pie (the target's default); the last one wins
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
        "-Wl,--no-dynamic-linker",
        "-Wl,-z,max-page-size=4096",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={a}");
    }
    // One linker script per image (each bin has its own entry and notes).
    for bin in ["pvh-boot", "pv-boot"] {
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,-T,{dir}/../linker/{bin}.ld");
    }
    // The link map, next to the binary (OUT_DIR is <profile dir>/build/<pkg>-<hash>/out):
    // the release profile strips the symbol table, but the map of the same link still
    // names every function's address. rxen-mkimage stores it in an image as
    // .rxen/symbols, so an exception report names the function holding RIP.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Some(profile_dir) = out.ancestors().nth(3) {
        for bin in ["pvh-boot", "pv-boot"] {
            println!("cargo:rustc-link-arg-bin={bin}=-Wl,-Map={}/{bin}.map", profile_dir.display());
        }
    }
}
