use super::{Action, Container};
use crate::Result;

/// Freezes every process of the container.
pub fn pause(c: &mut Container) -> Result<()> {
    c.allow(Action::Pause)?;
    c.cgroup()?.freeze()?;
    c.complete(Action::Pause)
}

pub fn resume(c: &mut Container) -> Result<()> {
    c.allow(Action::Resume)?;
    c.cgroup()?.thaw()?;
    c.complete(Action::Resume)
}
