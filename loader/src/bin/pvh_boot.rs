// SPDX-License-Identifier: MIT OR Apache-2.0
//! pvh-boot (stub)
#![no_std]
#![no_main]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { loop {} }
