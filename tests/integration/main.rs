//! haelk's one integration test binary: the command line and the library, end to
//! end, with real inventory files.

mod cli;
mod elasticsearch;
mod lab;
mod lint;
