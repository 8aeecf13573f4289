//! End-to-end tests of the filters plugin through the plugin runtime.
