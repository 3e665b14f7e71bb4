//! The one thread that owns the log files.
//!
//! Requests hand entries over a bounded channel and never wait for the disk. The thread writes
//! through a buffer per open file, flushes when the channel goes quiet (at most a second after
//! a burst), before closing a file at rollover, and when asked (shutdown). A full channel drops
//! the entry and counts it: a stuck disk must never stall the proxy.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{Entry, SiteLog, format};

/// Entries the channel holds before new ones are dropped (a few seconds of a busy proxy).
const CAPACITY: usize = 65_536;
/// Buffered lines reach the disk at most this long after a burst ends.
const IDLE_FLUSH: Duration = Duration::from_secs(1);
/// Lines dropped because the writer fell behind (`certgate_w3c_lines_dropped_total`).
pub const DROPPED: &str = "certgate_w3c_lines_dropped_total";
/// Lines the writer could not write (disk full, permissions), by nothing: see the log.
pub const WRITE_ERRORS: &str = "certgate_w3c_write_errors_total";

enum Message {
    Entry(Arc<SiteLog>, Box<Entry>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Files currently open, by site directory, and what was written to each in this process.
#[derive(Default)]
pub struct Files {
    open: HashMap<PathBuf, OpenFile>,
    last_error: Option<Instant>,
}

struct OpenFile {
    name: String,
    out: BufWriter<File>,
    /// The `#Fields:` line the current header block announced.
    fields: String,
}

impl Files {
    /// Writes one entry into the file its time and the site's period select, opening (and
    /// writing a header block) when the file changes or the site's fields changed.
    pub fn write(&mut self, site: &SiteLog, entry: &Entry) -> io::Result<()> {
        let name = format::file_name(site.period, entry.time);
        let fields = format::fields_line(site);
        let reopen = self
            .open
            .get(&site.directory)
            .is_none_or(|f| f.name != name);
        if reopen {
            if let Some(mut old) = self.open.remove(&site.directory) {
                old.out.flush()?;
            }
            let file = open_append(&site.directory, &name)?;
            self.open.insert(
                site.directory.clone(),
                OpenFile {
                    name,
                    out: BufWriter::with_capacity(64 * 1024, file),
                    fields: String::new(),
                },
            );
        }
        let Some(open) = self.open.get_mut(&site.directory) else {
            return Ok(());
        };
        // A new file, a restart (first write of this process) or a changed field list: IIS
        // writes a fresh header block so every line below is read with the right fields.
        if open.fields != fields {
            open.out
                .write_all(format::header(site, entry.time).as_bytes())?;
            open.fields = fields;
        }
        open.out.write_all(format::line(site, entry).as_bytes())
    }

    /// Flushes every buffer to the files.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for f in self.open.values_mut() {
            if let Err(e) = f.out.flush() {
                result = Err(e);
            }
        }
        result
    }

    fn report(&mut self, e: &io::Error) {
        metrics::counter!(WRITE_ERRORS).increment(1);
        // At most one log line a minute: a full disk must not flood the log as well.
        if self
            .last_error
            .is_none_or(|t| t.elapsed() > Duration::from_secs(60))
        {
            self.last_error = Some(Instant::now());
            tracing::error!(error = %e, "cannot write the W3C log");
        }
    }
}

fn open_append(dir: &Path, name: &str) -> io::Result<File> {
    std::fs::create_dir_all(dir)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
}

fn run(rx: &Receiver<Message>) {
    let mut files = Files::default();
    loop {
        match rx.recv_timeout(IDLE_FLUSH) {
            Ok(Message::Entry(site, entry)) => {
                if let Err(e) = files.write(&site, &entry) {
                    files.report(&e);
                }
            }
            Ok(Message::Flush(done)) => {
                if let Err(e) = files.flush() {
                    files.report(&e);
                }
                let _ = done.send(());
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Err(e) = files.flush() {
                    files.report(&e);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = files.flush();
                return;
            }
        }
    }
}

fn sender() -> Option<&'static SyncSender<Message>> {
    static SENDER: OnceLock<Option<SyncSender<Message>>> = OnceLock::new();
    SENDER
        .get_or_init(|| {
            let (tx, rx) = sync_channel(CAPACITY);
            match std::thread::Builder::new()
                .name("certgate-w3c".into())
                .spawn(move || run(&rx))
            {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the W3C log writer");
                    None
                }
            }
        })
        .as_ref()
}

/// Queues an entry without waiting; a full queue drops it and counts the drop.
pub fn submit(site: Arc<SiteLog>, entry: Entry) {
    let Some(tx) = sender() else {
        metrics::counter!(DROPPED).increment(1);
        return;
    };
    match tx.try_send(Message::Entry(site, Box::new(entry))) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            metrics::counter!(DROPPED).increment(1);
        }
    }
}

/// Writes every entry queued so far to disk and returns when they are there (shutdown).
/// Runs the blocking wait off the async workers.
pub async fn flush() {
    let Some(tx) = sender() else { return };
    let tx = tx.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let (done, wait) = std::sync::mpsc::channel();
        // `send` waits for room: at shutdown every entry must reach the file.
        if tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(30));
        }
    })
    .await;
}
