//! Templates: built into the binary, overridable from a directory.
//! (Being written: see the foundation issue.)
