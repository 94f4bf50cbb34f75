//! Move one Envoy's wall clock at runtime, for tests of clock steps (an NTP step, a VM
//! restored from a snapshot), without touching the machine's clock.
//!
//! [`ClockShift::new`] compiles `tests/fixtures/clock_shift.c` with the system C compiler
//! (`$CC`, else `cc`) into an `LD_PRELOAD` library; [`ClockShift::apply`] adds it to an
//! [`EnvoyConfig`]'s environment; [`ClockShift::set`] moves the clock. Only `CLOCK_REALTIME`
//! moves (what proxy-wasm's `get_current_time_nanoseconds` reads); monotonic time, and so
//! Envoy's timers, keep real time. The C file says why this is not Debian's libfaketime
//! (it deadlocks Envoy's statically linked tcmalloc before `main`).
//!
//! ```no_run
//! # use envoy_harness::{clock::ClockShift, EnvoyConfig, Envoy};
//! # fn main() -> anyhow::Result<()> {
//! let clock = ClockShift::new()?;
//! let envoy = Envoy::start(clock.apply(EnvoyConfig::new("127.0.0.1:9".parse()?)))?;
//! clock.set(-3600)?; // Envoy's wall clock is now an hour behind
//! # Ok(()) }
//! ```

use crate::render::EnvoyConfig;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// A compiled clock-shift library and the file holding the current shift.
pub struct ClockShift {
    dir: tempfile::TempDir,
    library: PathBuf,
}

impl ClockShift {
    /// Compile the library into a fresh directory; the shift starts at 0.
    pub fn new() -> Result<Self> {
        let source = crate::workspace_root().join("tests/fixtures/clock_shift.c");
        let dir = tempfile::Builder::new().prefix("clock-shift-").tempdir()?;
        let library = dir.path().join("clock_shift.so");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(&cc)
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&library)
            .arg(&source)
            .output()
            .with_context(|| format!("running {cc} to build {}", source.display()))?;
        if !out.status.success() {
            bail!(
                "{cc} could not build {}: {}",
                source.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let shift = Self { dir, library };
        shift.set(0)?;
        Ok(shift)
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("shift")
    }

    /// `config` with the library preloaded into Envoy and pointed at this shift.
    #[must_use]
    pub fn apply(&self, config: EnvoyConfig) -> EnvoyConfig {
        config
            .env("LD_PRELOAD", &self.library.to_string_lossy())
            .env("CLOCK_SHIFT_FILE", &self.file().to_string_lossy())
    }

    /// Set the wall clock to real time plus `seconds` (negative: back). Atomic (rename), so
    /// a reader sees the old or the new shift, never a partial one.
    pub fn set(&self, seconds: i64) -> Result<()> {
        let tmp = self.dir.path().join("shift.tmp");
        std::fs::write(&tmp, seconds.to_string())?;
        std::fs::rename(&tmp, self.file())?;
        Ok(())
    }
}
