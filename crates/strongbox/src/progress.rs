//! Progress of long commands on stderr: on a terminal one line redrawn every
//! second, otherwise (a log, a pipe) one line every ten seconds.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Ticker {
    tty: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Ticker {
    pub fn new() -> Ticker {
        let now = Instant::now();
        Ticker {
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: now,
            shown: false,
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Shows `line()` if a line is due.
    pub fn tick(&mut self, line: impl FnOnce(&Ticker) -> String) {
        let every = if self.tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        self.shown = true;
        let line = line(self);
        if self.tty {
            eprint!("\r{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }

    /// Ends the redrawn line, if one was shown.
    pub fn finish(&self) {
        if self.tty && self.shown {
            eprintln!();
        }
    }
}

/// A writer that shows how many bytes went through it.
pub struct Counting<W> {
    inner: W,
    bytes: u64,
    what: &'static str,
    ticker: Ticker,
}

impl<W: Write> Counting<W> {
    pub fn new(inner: W, what: &'static str) -> Counting<W> {
        Counting {
            inner,
            bytes: 0,
            what,
            ticker: Ticker::new(),
        }
    }

    pub fn finish(self) -> W {
        self.ticker.finish();
        self.inner
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        let (bytes, what) = (self.bytes, self.what);
        self.ticker.tick(|t| {
            format!(
                "{what}: {:.1} MB ({:.1} MB/s)",
                bytes as f64 / 1e6,
                bytes as f64 / 1e6 / t.elapsed().max(1e-9)
            )
        });
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
