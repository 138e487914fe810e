//! Ceremonies: scripts (data), and the printed form the room follows.

pub mod print;
pub mod script;
