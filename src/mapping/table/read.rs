//! Reading a table as it streams in: a reader thread cuts the file into blocks of whole lines,
//! every core parses blocks, and the caller's thread takes the rows back in file order.
//!
//! A million-row table is most of a gigabyte. Read, then parse, then index one block after
//! another, the other cores waited while one thread read the file and took each block's rows;
//! in this pipeline the reading, the parsing and the caller's work on earlier rows overlap.
//! Memory stays bounded: blocks travel in a fixed set of buffers, and a buffer is read into
//! again only after the caller has taken the rows of the block it held.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Mutex, PoisonError};

use super::{
    CERTIFICATE, ENABLED, Header, RowResult, TableError, USER_NAME, parse_header, parse_row,
};

/// Bytes read per block; a block is one worker's unit of parsing.
const BLOCK: usize = 8 << 20;
/// The first read into a new buffer; it doubles up to [`BLOCK`].
const FIRST_READ: usize = 64 << 10;
/// A line longer than this is refused (a certificate is a few kilobytes).
const MAX_LINE: usize = 1 << 20;

/// Reads a table, handing each row (or its problems) to `sink` in file order. Problems of the
/// file as a whole (unreadable, empty, a bad header) are handed to `sink` too, and stop the
/// reading.
pub fn read_table<R: Read + Send>(input: R, mut sink: impl FnMut(RowResult)) {
    let mut blocks = Blocks::new(input);
    // The header first, on this thread: no row can be parsed without it.
    let (header, first) = loop {
        let block = match blocks.next_block(Vec::new()) {
            Ok(Some(block)) => block,
            Ok(None) => {
                sink(Err(vec![TableError::file(format!(
                    "the file is empty; the first line must be the header, e.g. \
                     {USER_NAME},{CERTIFICATE},{ENABLED}"
                ))]));
                return;
            }
            Err(e) => {
                sink(Err(vec![e]));
                return;
            }
        };
        match find_header(block) {
            Err(errors) => {
                sink(Err(errors));
                return;
            }
            Ok(Some(found)) => break found,
            Ok(None) => {}
        }
    };
    if blocks.done && blocks.carry.is_empty() {
        // The whole file was one block (every table but the largest): no threads.
        for row in parse_block(&header, &first) {
            sink(row);
        }
        return;
    }
    pipeline(&header, blocks, first, &mut sink);
}

/// The header line of the first lines that are not blank or a `#TYPE` line, and the block from
/// the line after it; `None` when the block holds no header yet (only blank lines).
fn find_header(mut block: Block) -> Result<Option<(Header, Block)>, Vec<TableError>> {
    if block.first_line == 1 {
        let text = &block.text[..block.end];
        if text.starts_with(&[0xff, 0xfe]) || text.starts_with(&[0xfe, 0xff]) {
            return Err(vec![TableError::file(
                "the file is UTF-16; save it as UTF-8 (Export-Csv -Encoding UTF8)",
            )]);
        }
        if text.starts_with("\u{feff}".as_bytes()) {
            block.start = 3;
        }
    }
    while block.start < block.end {
        let text = &block.text[block.start..block.end];
        let (line, next) = match memchr::memchr(b'\n', text) {
            Some(n) => (&text[..n], block.start + n + 1),
            None => (text, block.end),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let number = block.first_line;
        block.start = next;
        block.first_line += 1;
        if line.is_empty() || (number == 1 && line.starts_with(b"#TYPE")) {
            continue;
        }
        return parse_header(number, line).map(|header| Some((header, block)));
    }
    Ok(None)
}

/// The rows of a block's lines, blank lines skipped.
fn parse_block(header: &Header, block: &Block) -> Vec<RowResult> {
    let mut scratch = Vec::with_capacity(2048);
    split_lines(&block.text[block.start..block.end])
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(k, line)| {
            let number = block.first_line + k;
            if line.len() > MAX_LINE {
                return Err(vec![TableError::line(
                    number,
                    format!("the line is longer than {MAX_LINE} bytes"),
                )]);
            }
            parse_row(header, number, line, &mut scratch)
        })
        .collect()
}

/// What a worker hands back: a block's rows and its buffer, or the reader's failure.
type Parsed = (usize, Result<(Vec<RowResult>, Vec<u8>), TableError>);

/// The reader thread, one parser per core, and the caller's thread putting the rows back in
/// order; `first` is the block the header was found in, from the line after it.
fn pipeline<R: Read + Send>(
    header: &Header,
    mut blocks: Blocks<R>,
    first: Block,
    sink: &mut impl FnMut(RowResult),
) {
    let parsers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // Blocks in flight: one per parser, one being read, one queued, plus `first`.
    let (free_send, free): (Sender<Vec<u8>>, Receiver<Vec<u8>>) = channel();
    for _ in 0..parsers + 2 {
        let _ = free_send.send(Vec::new());
    }
    let (work_send, work): (SyncSender<(usize, Result<Block, TableError>)>, _) =
        sync_channel(parsers);
    // `None` once the caller has stopped: the reader's next send fails and it stops.
    let work = Mutex::new(Some(work));
    let (parsed_send, parsed) = channel::<Parsed>();
    // Queued before the reader starts, so that it cannot fill the queue first.
    let _ = work_send.send((0, Ok(first)));
    std::thread::scope(|scope| {
        let reader = move || {
            let mut seq = 1;
            // Stops when the caller stops taking rows (no buffer comes back).
            while let Ok(buffer) = free.recv() {
                let next = match blocks.next_block(buffer) {
                    Ok(None) => break,
                    Ok(Some(block)) => Ok(block),
                    Err(e) => Err(e),
                };
                let failed = next.is_err();
                if work_send.send((seq, next)).is_err() || failed {
                    break;
                }
                seq += 1;
            }
        };
        let started = std::thread::Builder::new()
            .name("certgate-read".into())
            .spawn_scoped(scope, reader)
            .is_ok();
        let parser = || {
            let parsed_send = parsed_send.clone();
            let work = &work;
            move || {
                loop {
                    let next = match &*work.lock().unwrap_or_else(PoisonError::into_inner) {
                        Some(work) => work.recv(),
                        None => break,
                    };
                    let Ok((seq, item)) = next else { break };
                    let out = item.map(|block| (parse_block(header, &block), block.text));
                    if parsed_send.send((seq, out)).is_err() {
                        break;
                    }
                }
            }
        };
        let mut running = 0;
        for _ in 0..parsers {
            if std::thread::Builder::new()
                .name("certgate-load".into())
                .spawn_scoped(scope, parser())
                .is_ok()
            {
                running += 1;
            }
        }
        drop(parsed_send);
        if started && running > 0 {
            take_in_order(parsed, &free_send, sink);
        } else {
            // No threads to be had: say so rather than load part of a table.
            sink(Err(vec![TableError::file(
                "cannot start the threads that read the table",
            )]));
        }
        // Stop the others: no buffer comes back to the reader, and its next block has nowhere
        // to go, which also ends the parsers.
        drop(free_send);
        work.lock().unwrap_or_else(PoisonError::into_inner).take();
    });
}

/// Hands the parsed rows to `sink` in file order (a later block that finished first waits),
/// and each block's buffer back to the reader; stops at the reader's failure.
fn take_in_order(
    parsed: Receiver<Parsed>,
    free: &Sender<Vec<u8>>,
    sink: &mut impl FnMut(RowResult),
) {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    for (seq, out) in parsed {
        waiting.insert(seq, out);
        while let Some(out) = waiting.remove(&next) {
            next += 1;
            match out {
                Ok((rows, buffer)) => {
                    rows.into_iter().for_each(&mut *sink);
                    let _ = free.send(buffer);
                }
                Err(e) => {
                    sink(Err(vec![e]));
                    return;
                }
            }
        }
    }
}

/// The lines of a run of text, without their line ends (`\n` or `\r\n`).
fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    // memchr's SIMD search: a byte-at-a-time split was a sixth of a million-row load.
    let mut start = 0;
    memchr::memchr_iter(b'\n', text)
        .chain(std::iter::once(text.len()))
        .map(move |end| {
            let line = &text[start..end];
            start = end + 1;
            line.strip_suffix(b"\r").unwrap_or(line)
        })
}

/// A run of whole lines in a reusable buffer: `text[start..end]`, whose first line is
/// `first_line` (1-based).
struct Block {
    first_line: usize,
    text: Vec<u8>,
    start: usize,
    end: usize,
}

/// Cuts the input into blocks of whole lines.
struct Blocks<R> {
    input: R,
    /// The start of a line read with the previous block, for the next.
    carry: Vec<u8>,
    /// Line number of the next line to hand out.
    next_line: usize,
    done: bool,
}

impl<R: Read> Blocks<R> {
    fn new(input: R) -> Self {
        Self {
            input,
            carry: Vec::new(),
            next_line: 1,
            done: false,
        }
    }

    /// The next run of whole lines, read into `text` (a buffer to reuse: its contents do not
    /// matter, and it keeps its length so that it is zeroed only once); `None` at the end.
    fn next_block(&mut self, mut text: Vec<u8>) -> Result<Option<Block>, TableError> {
        let kept = self.carry.len();
        // A small table needs no 8 MiB buffer: start small and double up to a block.
        if text.len() < kept + FIRST_READ {
            text.resize(kept + FIRST_READ, 0);
        }
        text[..kept].copy_from_slice(&self.carry);
        self.carry.clear();
        let mut filled = kept;
        while !self.done && filled < BLOCK {
            if filled == text.len() {
                text.resize((2 * text.len()).min(kept + BLOCK), 0);
            }
            match self.input.read(&mut text[filled..]) {
                Ok(0) => self.done = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(TableError::file(format!("cannot read the file: {e}"))),
            }
        }
        let end = if self.done {
            filled
        } else {
            // A block's worth without a line end is a line far longer than MAX_LINE.
            match memchr::memrchr(b'\n', &text[..filled]) {
                Some(n) => n + 1,
                None => {
                    return Err(TableError::line(
                        self.next_line,
                        format!("the line is longer than {MAX_LINE} bytes"),
                    ));
                }
            }
        };
        if end == 0 {
            return Ok(None);
        }
        self.carry.extend_from_slice(&text[end..filled]);
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &text[..end]).count();
        if !text[..end].ends_with(b"\n") {
            self.next_line += 1;
        }
        Ok(Some(Block {
            first_line,
            text,
            start: 0,
            end,
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_only_at_line_ends_and_count_lines() {
        // Lines straddling block boundaries come out whole and numbered.
        let line = |i: usize| format!("user{i},{}\n", "x".repeat(1000 + i % 7));
        let text: String = (0..20_000).map(line).collect();
        let mut blocks = Blocks::new(text.as_bytes());
        let mut next = 1;
        let mut seen = 0;
        let mut buffer = Vec::new();
        while let Some(block) = blocks.next_block(buffer).unwrap() {
            assert_eq!(block.first_line, next);
            let lines = &block.text[block.start..block.end];
            for (k, l) in split_lines(lines).enumerate() {
                assert_eq!(String::from_utf8_lossy(l) + "\n", line(next + k - 1));
                seen += 1;
            }
            next += lines.iter().filter(|b| **b == b'\n').count();
            buffer = block.text;
        }
        assert_eq!(seen, 20_000);
        assert!(text.len() > 2 * BLOCK, "the test spans several blocks");
    }

    /// An `Export-Csv` table of `rows` rows of one certificate, every `bad`th row without a
    /// user and a blank line after every 7th, spanning several blocks.
    fn big_table(rows: usize, bad: usize) -> (String, Vec<Result<usize, usize>>) {
        use base64::Engine as _;
        let c = rcgen::generate_simple_self_signed(vec!["a".to_owned()]).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(c.cert.der().as_ref());
        let mut text = String::from("\"userName\",\"certificate\"\r\n");
        let mut expected = Vec::new();
        let mut line = 2;
        for i in 0..rows {
            let user = if i % bad == bad - 1 {
                String::new()
            } else {
                format!("EXAMPLE\\u{i}")
            };
            text.push_str(&format!("\"{user}\",\"{b64}\"\r\n"));
            expected.push(if user.is_empty() { Err(line) } else { Ok(line) });
            line += 1;
            if i % 7 == 6 {
                text.push_str("\r\n");
                line += 1;
            }
        }
        (text, expected)
    }

    /// Fails with where the two lists first differ (they are too long to print whole).
    fn same(got: &[Result<usize, usize>], expected: &[Result<usize, usize>]) {
        let at = got.iter().zip(expected).position(|(g, e)| g != e);
        assert!(
            at.is_none() && got.len() == expected.len(),
            "{} rows, {} expected; first difference at {at:?}: {:?} vs {:?}",
            got.len(),
            expected.len(),
            at.map(|k| got[k]),
            at.map(|k| expected[k]),
        );
    }

    fn lines_of(results: &[RowResult]) -> Vec<Result<usize, usize>> {
        results
            .iter()
            .map(|r| match r {
                Ok(row) => Ok(row.line),
                Err(errors) => Err(errors[0].line),
            })
            .collect()
    }

    #[test]
    fn rows_come_back_in_file_order_across_blocks() {
        let (text, expected) = big_table(60_000, 997);
        assert!(text.len() > 3 * BLOCK, "the test spans several blocks");
        let mut got = Vec::new();
        read_table(text.as_bytes(), |r| got.push(r));
        same(&lines_of(&got), &expected);
        let Err(errors) = &got[996] else {
            panic!("row 997 has no user")
        };
        assert_eq!(
            errors[0].to_string(),
            "line 1140, column 1 (userName): the mapping names no user"
        );
    }

    /// Gives `limit` bytes of `text`, then fails.
    struct FailsAfter<'a> {
        text: &'a [u8],
        limit: usize,
    }

    impl Read for FailsAfter<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.limit == 0 {
                return Err(std::io::Error::other("the disk went away"));
            }
            let n = out.len().min(self.limit).min(self.text.len());
            out[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            self.limit -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_midway_ends_the_rows_with_the_error() {
        let (text, expected) = big_table(60_000, 1_000_000);
        let input = FailsAfter {
            text: text.as_bytes(),
            limit: 2 * BLOCK + 12_345,
        };
        let mut got = Vec::new();
        read_table(input, |r| got.push(r));
        let (last, rows) = got.split_last().unwrap();
        // Every row of the blocks read before the failure, in order, then the failure.
        assert!(rows.len() > 10_000, "{}", rows.len());
        same(&lines_of(rows), &expected[..rows.len()]);
        let Err(errors) = last else {
            panic!("the read error is reported")
        };
        assert_eq!(
            errors[0].to_string(),
            "cannot read the file: the disk went away"
        );
    }

    #[test]
    fn a_runaway_line_midway_is_reported_after_the_rows_before_it() {
        let (mut text, expected) = big_table(20_000, 1_000_000);
        text.push_str(&"A".repeat(2 * BLOCK));
        text.push_str("\r\nuser,cert\r\n");
        let mut got = Vec::new();
        read_table(text.as_bytes(), |r| got.push(r));
        let (last, rows) = got.split_last().unwrap();
        same(&lines_of(rows), &expected);
        let Err(errors) = last else {
            panic!("the long line is reported")
        };
        let line = expected.last().unwrap().unwrap() + 1;
        assert_eq!(
            errors[0].to_string(),
            format!("line {line}: the line is longer than {MAX_LINE} bytes")
        );
    }

    #[test]
    fn a_long_line_within_a_block_is_refused_alone() {
        let (mut text, mut expected) = big_table(3, 1_000_000);
        text.push_str(&"A".repeat(MAX_LINE + 1));
        text.push_str("\r\n");
        expected.push(Err(expected.last().unwrap().unwrap() + 1));
        let mut got = Vec::new();
        read_table(text.as_bytes(), |r| got.push(r));
        same(&lines_of(&got), &expected);
    }
}
