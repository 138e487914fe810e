//! Moving files on and off the appliance without a network: removable media and animated QR codes.
pub mod bundle;
pub mod qr;
pub mod usb;
