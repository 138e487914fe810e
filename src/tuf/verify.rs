//! Verification (filled in next).
