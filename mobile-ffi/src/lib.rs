//! uniffi bindings of the Tournée sync core. Not built yet: issue #4 adds them here. The crate
//! exists so the workspace has its final shape; it exposes nothing.
