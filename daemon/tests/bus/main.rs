//! The bus tier: portctld and portctl on a private dbus-daemon (the real bus, a config of the
//! test's own), serving scratch host roots: the v252 interface method by method, hostile
//! callers and images, crashes and faults, `portctl run`, the client as a Unix tool, and what
//! the attack on the installed daemon found. Needs root (loop devices, mounts, other users).

mod callers;
mod client;
mod dbus_api;
mod faults;
mod hostile;
mod run;
mod security;
