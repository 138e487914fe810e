//! Ceremonies: scripts (data), and the printed form the room follows.

pub mod conformance;
pub mod engine;
pub mod print;
pub mod publish;
pub mod script;
