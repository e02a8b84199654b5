use oci_spec::runtime::LinuxResources;

use super::{Action, Container};
use crate::error::Context;
use crate::Result;

/// Applies new limits to the cgroup and records them in the container's config, so a later
/// checkpoint and restore carries them. Fields absent from `res` keep their values.
pub fn update(c: &mut Container, res: &LinuxResources) -> Result<()> {
    c.allow(Action::Update)?;
    c.cgroup()?.set(res)?;
    let mut linux = c.spec.linux().clone().unwrap_or_default();
    let encode = || "update: encode resources".to_string();
    let mut old =
        serde_json::to_value(linux.resources().clone().unwrap_or_default()).ctx(encode)?;
    merge(&mut old, serde_json::to_value(res).ctx(encode)?);
    let merged: LinuxResources =
        serde_json::from_value(old).ctx(|| "update: merge resources".into())?;
    linux.set_resources(Some(merged));
    c.spec.set_linux(Some(linux));
    c.save_spec()
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                if v.is_null() {
                    continue;
                }
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_keeps_absent_fields() {
        let mut a = json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(
            &mut a,
            json!({"memory": {"limit": 9}, "cpu": {"shares": 3}, "pids": null}),
        );
        assert_eq!(
            a,
            json!({"memory": {"limit": 9, "swap": 2}, "pids": {"limit": 5}, "cpu": {"shares": 3}})
        );
    }
}
