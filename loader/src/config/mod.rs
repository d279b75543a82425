// SPDX-License-Identifier: MIT OR Apache-2.0
//! Boot policy and guest configuration parsers (stub).
