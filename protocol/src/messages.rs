//! Generated messages (in progress).
