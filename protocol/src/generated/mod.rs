// placeholder, replaced by `cargo codegen`
pub(crate) mod error_codes;
