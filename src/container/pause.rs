use super::{Action, Container, Status};
use crate::Result;

/// Freezes every process of the container.
pub fn pause(c: &mut Container) -> Result<()> {
    c.status().check(c.id(), Action::Pause)?;
    c.cgroup()?.freeze()?;
    c.state.status = Status::Paused;
    c.save()
}

pub fn resume(c: &mut Container) -> Result<()> {
    c.status().check(c.id(), Action::Resume)?;
    c.cgroup()?.thaw()?;
    c.state.status = Status::Running;
    c.save()
}
