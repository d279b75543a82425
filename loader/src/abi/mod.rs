// SPDX-License-Identifier: MIT OR Apache-2.0
//! Wire structures shared with hypervisors and kernels: one place, `#[repr(C)]`,
//! size-asserted, each citing the header it was transcribed from.

pub mod boot_params;
pub mod hvm_start_info;
pub mod xen;
