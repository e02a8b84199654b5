//! The harness of lcr's integration tests (`harness = false` in their Cargo.toml entries).
//!
//! libtest has no way to skip a test once it runs: a test that returned early because the
//! machine lacks something read as passed. Here a test calls [`skip`] with its reason and
//! returns; the run reports it as ignored, with that reason, and counts it so. Everything
//! else is libtest's behaviour (libtest-mimic): the same flags, filters and summary, a panic
//! fails the test.

use std::cell::RefCell;

use libtest_mimic::{Arguments, Completion, Trial};

thread_local! {
    static SKIPPED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the running test as not run here, for `why`; it should return right after.
pub fn skip(why: impl Into<String>) {
    let why = why.into();
    eprintln!("SKIP: {why}");
    SKIPPED.with(|s| *s.borrow_mut() = Some(why));
}

/// Runs the named tests as libtest would, those that called [`skip`] reported as ignored.
pub fn run(tests: Vec<(&'static str, fn())>) -> ! {
    let args = Arguments::from_args();
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::ignorable_test(name, move || {
                SKIPPED.with(|s| s.borrow_mut().take());
                test();
                Ok(match SKIPPED.with(|s| s.borrow_mut().take()) {
                    Some(why) => Completion::ignored_with(why),
                    None => Completion::Completed,
                })
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

/// `fn main` of a test binary: runs the listed test functions.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        fn main() {
            $crate::run(vec![$((stringify!($name), $name as fn())),*]);
        }
    };
}
