//! The CRDT core shared by the postman's phone and the Tournée server.
//!
//! It holds what both sides must agree on: the schemas of the Automerge documents
//! ([`model`]), the operations each party may perform ([`operations`]), the rules that validate
//! them ([`rules`], [`validator`]), the phone's crash-safe local store ([`store`]) and the sync
//! protocol ([`sync`]). It has no HTTP, no SQL and no FFI, so the server and the mobile bindings
//! build on the same code.

pub mod fixtures;
pub mod ids;
pub mod model;
pub mod operations;
pub mod rules;
pub mod s10;
mod shape;
pub mod signing;
pub mod store;
pub mod sync;
pub mod validator;
pub mod views;

pub use automerge;
pub use ids::{DocId, DocKind};
pub use s10::S10;
