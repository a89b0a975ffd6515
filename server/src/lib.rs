//! The Tournée server. Not built yet: issue #3 adds the axum + sqlx service here. The crate
//! exists so the workspace has its final shape; it exposes nothing.
