//! Decompression on its own thread: [`ThreadedReader`] runs a decoder on a helper thread and
//! hands its output over in large chunks through a bounded channel.
//!
//! Unpacking is two kinds of work: decompressing (CPU) and creating files (system calls). GNU tar
//! overlaps them by running `gzip -d` or `xz -d` as a separate process in a pipe; this does the
//! same inside one process. At most [`IN_FLIGHT`] chunks of [`CHUNK`] bytes wait in the channel,
//! so memory stays bounded however large the archive is, and spent chunks are sent back to be
//! refilled instead of reallocated.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes per chunk handed from the decoder thread to the reader.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks that may wait in the channel.
pub(crate) const IN_FLIGHT: usize = 8;

/// What the decoder thread sends: data, the end of the stream, or the decoder's error.
enum Message {
    Data(Vec<u8>),
    End,
    Failed(io::Error),
}

/// A [`BufRead`] over the output of a decoder running on a helper thread.
///
/// Dropping it stops the thread (its next send fails) and waits for it.
pub(crate) struct ThreadedReader {
    chunks: Option<Receiver<Message>>,
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    position: usize,
    ended: bool,
    thread: Option<JoinHandle<()>>,
}

impl ThreadedReader {
    /// Starts a thread that reads `decoder` to its end.
    pub(crate) fn spawn(mut decoder: Box<dyn Read + Send>) -> io::Result<ThreadedReader> {
        let (chunk_sender, chunks) = mpsc::sync_channel(IN_FLIGHT);
        let (recycle, recycled) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
        let thread = std::thread::Builder::new()
            .name("kiln-decompress".to_owned())
            .spawn(move || loop {
                let mut buffer = recycled.try_recv().unwrap_or_default();
                buffer.resize(CHUNK, 0);
                let message = match crate::detect::read_head(&mut decoder, &mut buffer) {
                    Ok(0) => Message::End,
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
            })?;
        Ok(ThreadedReader {
            chunks: Some(chunks),
            recycle,
            current: Vec::new(),
            position: 0,
            ended: false,
            thread: Some(thread),
        })
    }
}

impl BufRead for ThreadedReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.position == self.current.len() && !self.ended {
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
                Some(Message::End) => self.ended = true,
                Some(Message::Failed(error)) => {
                    self.ended = true;
                    return Err(error);
                }
                None => {
                    self.ended = true;
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

impl Read for ThreadedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let count = available.len().min(buf.len());
        buf[..count].copy_from_slice(&available[..count]);
        self.consume(count);
        Ok(count)
    }
}

impl Drop for ThreadedReader {
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
        let mut reader = ThreadedReader::spawn(Box::new(io::Cursor::new(data.clone()))).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn reports_the_decoder_error() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt"))
            }
        }
        let mut reader = ThreadedReader::spawn(Box::new(Broken)).unwrap();
        let error = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(error.to_string(), "corrupt");
    }

    #[test]
    fn dropping_early_stops_the_thread() {
        let reader = ThreadedReader::spawn(Box::new(io::repeat(7))).unwrap();
        drop(reader); // must return: the endless decoder stops at its next send
    }
}
