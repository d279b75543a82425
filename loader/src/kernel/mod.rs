// SPDX-License-Identifier: MIT OR Apache-2.0
//! Kernel image formats (stub).
