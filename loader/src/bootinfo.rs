// SPDX-License-Identifier: MIT OR Apache-2.0
//! `hvm_start_info` parsing (stub, filled in by the foundation work).
