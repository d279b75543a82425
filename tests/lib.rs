// SPDX-License-Identifier: MIT OR Apache-2.0
//! Helpers for the end-to-end tests in `tests/e2e/` (stub).
