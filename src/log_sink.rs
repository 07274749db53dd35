//! Where the server's log lines go: stderr, in batches. Every request logs
//! one line, and one `write` system call a line cost the 4 KiB GET about
//! 4 % of the server's CPU (perf). Lines are appended to a buffer that a
//! writer thread hands to stderr at most every [`FLUSH_EVERY`], so a busy
//! server makes one system call for many lines; an idle one writes each
//! line within that interval. Lines keep their order and none is dropped:
//! past [`MAX_PENDING`] bytes the logging thread writes the buffer itself.
//! Dropping the [`Flusher`] writes what is left (a normal exit or a
//! SIGTERM); a `kill -9` loses at most the last interval's lines.
//!
//! `tracing-appender`'s non-blocking writer hands each line to its thread
//! through a channel and wakes it per line; what is wanted here is fewer
//! system calls, so this is the smaller thing.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(5);
/// Buffered bytes past which the logging thread writes them out itself.
pub const MAX_PENDING: usize = 1 << 20;

struct Pending {
    buf: Vec<u8>,
    /// The writer thread is waiting for lines (a producer must wake it).
    idle: bool,
    closed: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Where batches go; held while one is written, so they arrive in
    /// order.
    out: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes everything buffered so far, in order.
    fn drain(&self) {
        let mut out = self.out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let batch = std::mem::take(&mut self.pending().buf);
        if !batch.is_empty() {
            // nowhere to report a failing stderr
            let _ = out.write_all(&batch);
            let _ = out.flush();
        }
    }
}

/// The `MakeWriter` for the fmt layer.
#[derive(Clone)]
pub struct BatchedStderr {
    shared: Arc<Shared>,
}

/// Writes what is left when dropped; keep it for the process's life.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The writer and its flusher (which starts the writer thread).
pub fn batched_stderr() -> (BatchedStderr, Flusher) {
    batched(Box::new(std::io::stderr()))
}

fn batched(out: Box<dyn Write + Send>) -> (BatchedStderr, Flusher) {
    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending {
            buf: Vec::new(),
            idle: false,
            closed: false,
        }),
        wake: Condvar::new(),
        out: Mutex::new(out),
    });
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name("strongroom-log".into())
        .spawn(move || run(&s))
        .ok();
    if thread.is_none() {
        // no thread: every line is written by its producer
        shared.pending().closed = true;
    }
    (BatchedStderr { shared: shared.clone() }, Flusher { shared, thread })
}

fn run(s: &Shared) {
    loop {
        {
            let mut p = s.pending();
            while p.buf.is_empty() && !p.closed {
                p.idle = true;
                p = s.wake.wait(p).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            p.idle = false;
            if p.closed {
                return;
            }
        }
        // let lines gather, then write them with one call
        std::thread::sleep(FLUSH_EVERY);
        s.drain();
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.pending().closed = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.drain();
    }
}

/// One event's writer (the fmt layer writes each line with one call).
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let (wake, full, direct) = {
            let mut p = self.shared.pending();
            p.buf.extend_from_slice(b);
            (p.idle, p.buf.len() > MAX_PENDING, p.closed)
        };
        if full || direct {
            self.shared.drain();
        } else if wake {
            self.shared.wake.notify_one();
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line { shared: &self.shared }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use tracing_subscriber::fmt::MakeWriter as _;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_once_in_order_within_the_interval() {
        let sink = Sink::default();
        let (w, f) = batched(Box::new(sink.clone()));
        let mut want = Vec::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            w.make_writer().write_all(line.as_bytes()).unwrap();
            want.extend_from_slice(line.as_bytes());
        }
        // the writer thread empties the buffer within the interval
        std::thread::sleep(FLUSH_EVERY * 40);
        assert!(w.shared.pending().buf.is_empty());
        assert_eq!(*sink.0.lock().unwrap(), want);
        // a buffer past the bound is written by the line that filled it
        let big = vec![b'x'; MAX_PENDING + 1];
        w.make_writer().write_all(&big).unwrap();
        want.extend_from_slice(&big);
        assert_eq!(sink.0.lock().unwrap().len(), want.len());
        // what is left is written when the flusher goes
        w.make_writer().write_all(b"last\n").unwrap();
        want.extend_from_slice(b"last\n");
        drop(f);
        assert_eq!(*sink.0.lock().unwrap(), want);
        // after it, lines are written by their producer
        w.make_writer().write_all(b"after\n").unwrap();
        assert!(sink.0.lock().unwrap().ends_with(b"after\n"));
    }
}
