//! End-to-end tests of the fhir plugin through the plugin runtime.
