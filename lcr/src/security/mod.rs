//! What the container's process may do: capabilities, seccomp, rlimits, user and groups.

mod caps;
mod rlimits;
mod seccomp;
mod user;

pub use self::caps::{
    apply_capabilities, drop_bounding, mask as capability_mask, names as capability_names,
};
pub use rlimits::apply_rlimits;
pub use seccomp::{build_filter, compile, filter_digest, load_bpf};
pub use user::{apply_user, set_no_new_privs};

/// The name serde gives an oci-spec enum value (e.g. `CAP_CHOWN`, `RLIMIT_NOFILE`).
pub(crate) fn spec_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
