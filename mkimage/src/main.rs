// SPDX-License-Identifier: MIT OR Apache-2.0
//! rxen-mkimage (stub).
fn main() {}
