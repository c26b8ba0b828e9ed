//! haelk's one integration test binary: the command line and the library, end to
//! end, with real inventory files.

mod cli;
mod deploy;
mod elasticsearch;
mod failover;
mod lab;
mod labkit;
mod lint;
mod migrate;
mod restart;
mod signals;
mod status;
mod zfs_stream;
