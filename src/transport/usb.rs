//! Removable media: finding destinations, atomic export with read-back, import.
