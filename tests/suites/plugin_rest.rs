//! End-to-end tests of the rest plugin through the plugin runtime.
