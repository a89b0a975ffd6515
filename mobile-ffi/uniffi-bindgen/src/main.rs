//! `uniffi-bindgen`, built from the same uniffi version as `tournee-mobile-ffi`: generated
//! Kotlin, Swift and Python only work with the scaffolding of the exact version that made them.

fn main() {
    uniffi::uniffi_bindgen_main()
}
