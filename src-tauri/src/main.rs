//! The desktop app's entry point; everything lives in the library so tests can reach it.

// Release builds on Windows must not open a console next to the window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    stormops_desktop::run();
}
