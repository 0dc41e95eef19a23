//! From a plan to what its steps see: loading a plan file or Nix's `.attrs.json` ([`load`]),
//! the dependencies' environment by convention and declared hooks ([`deps`]), and the
//! environment built from scratch ([`env`](mod@env)).

pub mod deps;
pub mod env;
pub mod load;
