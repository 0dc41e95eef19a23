//! Reading streams: [`read_full`] fills a buffer, and [`ThreadedReader`] runs a decoder on a
//! helper thread and hands its output over in large chunks through a bounded channel.
//!
//! Unpacking is two kinds of work: decompressing (CPU) and creating files (system calls). GNU tar
//! overlaps them by running `gzip -d` or `xz -d` as a separate process in a pipe; this does the
//! same inside one process. At most [`IN_FLIGHT`] chunks of [`CHUNK`] bytes wait in the channel,
//! so memory stays bounded however large the stream is, and spent chunks are sent back to be
//! refilled instead of reallocated.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per chunk handed from the decoder thread to the reader.
pub const CHUNK: usize = 256 * 1024;
/// Chunks that may wait in the channel: bounds the memory a [`ThreadedReader`] uses.
pub const IN_FLIGHT: usize = 8;

/// Reads from `reader` until `buffer` is full or the stream ends; returns how many bytes were
/// read. Interrupted reads are retried.
pub fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// What the decoder thread sends: data, the end of the stream with what `finish` made of it, or
/// an error.
enum Message<T> {
    Data(Vec<u8>),
    End(T),
    Failed(io::Error),
}

/// Where the reader is.
enum State<T> {
    /// More messages may come.
    Running,
    /// The stream ended; the value `finish` gave, until [`ThreadedReader::finish`] takes it.
    Ended(Option<T>),
    /// The stream failed (or the thread stopped early); every later read fails too.
    Failed,
}

/// A [`BufRead`] over the output of a decoder running on a helper thread.
///
/// `T` is what the thread makes of the stream at its end (see [`ThreadedReader::spawn_with`]),
/// e.g. a digest of the compressed bytes; [`ThreadedReader::spawn`] has none. An error ends the
/// stream for good: later reads fail rather than report a clean end.
///
/// Dropping it stops the thread (its next send fails) and waits for it.
pub struct ThreadedReader<T = ()> {
    chunks: Option<Receiver<Message<T>>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    state: State<T>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadedReader {
    /// Starts a thread called `name` that reads `decoder` to its end.
    pub fn spawn(name: &str, decoder: Box<dyn Read + Send>) -> io::Result<ThreadedReader> {
        ThreadedReader::spawn_with(name, move || Ok(decoder), |_| Ok(()))
    }
}

impl<T: Send + 'static> ThreadedReader<T> {
    /// Starts a thread called `name` that runs `open`, reads the stream it returns to its end,
    /// then hands that stream to `finish`; what `finish` returns is kept for
    /// [`ThreadedReader::finish`]. An error from `open` or `finish` is the stream's error, read
    /// in its place.
    pub fn spawn_with<R, O, F>(name: &str, open: O, finish: F) -> io::Result<ThreadedReader<T>>
    where
        R: Read,
        O: FnOnce() -> io::Result<R> + Send + 'static,
        F: FnOnce(R) -> io::Result<T> + Send + 'static,
    {
        let (chunk_sender, chunks) = mpsc::sync_channel(IN_FLIGHT);
        let (recycle, recycled) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let mut decoder = match open() {
                    Ok(decoder) => decoder,
                    Err(error) => {
                        let _ = chunk_sender.send(Message::Failed(error));
                        return;
                    }
                };
                loop {
                    let mut buffer = recycled.try_recv().unwrap_or_default();
                    buffer.resize(CHUNK, 0);
                    let message = match read_full(&mut decoder, &mut buffer) {
                        Ok(0) => break,
                        Ok(read) => {
                            buffer.truncate(read);
                            Message::Data(buffer)
                        }
                        Err(error) => Message::Failed(error),
                    };
                    let last = !matches!(message, Message::Data(_));
                    if chunk_sender.send(message).is_err() || last {
                        return;
                    }
                }
                let message = match finish(decoder) {
                    Ok(value) => Message::End(value),
                    Err(error) => Message::Failed(error),
                };
                let _ = chunk_sender.send(message);
            })?;
        Ok(ThreadedReader {
            chunks: Some(chunks),
            recycle,
            current: Vec::new(),
            position: 0,
            state: State::Running,
            thread: Some(thread),
        })
    }

    /// Reads the rest of the stream and returns what the thread's `finish` made of it.
    pub fn finish(mut self) -> io::Result<T> {
        io::copy(&mut self, &mut io::sink())?;
        match &mut self.state {
            State::Ended(value) => value.take(),
            State::Running | State::Failed => None,
        }
        .ok_or_else(|| io::Error::other("the stream ended without its summary"))
    }
}

impl<T> BufRead for ThreadedReader<T> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.current.len() {
            match self.state {
                State::Running => {}
                State::Ended(_) => break,
                State::Failed => return Err(io::Error::other("the stream failed earlier")),
            }
            let message = match &self.chunks {
                Some(chunks) => chunks.recv().ok(),
                None => None,
            };
            match message {
                Some(Message::Data(chunk)) => {
                    let spent = std::mem::replace(&mut self.current, chunk);
                    self.position = 0;
                    // The thread may have stopped; then the buffer is simply freed.
                    let _ = self.recycle.try_send(spent);
                }
                Some(Message::End(value)) => self.state = State::Ended(Some(value)),
                Some(Message::Failed(error)) => {
                    self.state = State::Failed;
                    return Err(error);
                }
                None => {
                    self.state = State::Failed;
                    return Err(io::Error::other(
                        "the decompression thread stopped before the end of the stream",
                    ));
                }
            }
        }
        Ok(&self.current[self.position..])
    }

    fn consume(&mut self, amount: usize) {
        self.position = (self.position + amount).min(self.current.len());
    }
}

impl<T> Read for ThreadedReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl<T> Drop for ThreadedReader<T> {
    fn drop(&mut self) {
        // Closing the channel makes the thread's next send fail, so it returns.
        drop(self.chunks.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_everything_through_in_order() {
        let data: Vec<u8> = (0..(CHUNK * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let mut reader =
            ThreadedReader::spawn("test", Box::new(io::Cursor::new(data.clone()))).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn reports_the_decoder_error_and_keeps_failing() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt"))
            }
        }
        let mut reader = ThreadedReader::spawn("test", Box::new(Broken)).unwrap();
        let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "corrupt");
        assert!(reader.read(&mut [0; 1]).is_err());
    }

    #[test]
    fn finish_returns_the_summary_after_the_data() {
        let mut reader = ThreadedReader::spawn_with(
            "test",
            || Ok(io::Cursor::new(vec![1u8; CHUNK + 1])),
            |cursor| Ok(cursor.position()),
        )
        .unwrap();
        let mut first = [0; 10];
        reader.read_exact(&mut first).unwrap();
        assert_eq!(reader.finish().unwrap(), CHUNK as u64 + 1);
    }

    #[test]
    fn an_open_error_is_read_as_the_stream_error() {
        let mut reader = ThreadedReader::<()>::spawn_with(
            "test",
            || Err::<io::Empty, _>(io::Error::other("cannot open")),
            |_| Ok(()),
        )
        .unwrap();
        let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "cannot open");
    }

    #[test]
    fn dropping_early_stops_the_thread() {
        let reader = ThreadedReader::spawn("test", Box::new(io::repeat(7))).unwrap();
        drop(reader); // must return: the endless decoder stops at its next send
    }
}
