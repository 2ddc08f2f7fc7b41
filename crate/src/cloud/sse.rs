//! Server-Sent Events, read as the WHATWG HTML standard's "event stream interpretation" says,
//! from bytes that arrive in pieces of any size.

use super::ProtocolError;

/// An incremental event stream parser: bytes in, the `data` of each completed event out.
///
/// Only `data` matters to a chat stream; `event`, `id`, `retry` and unknown fields are read
/// and dropped, as are comment lines (":"), which servers send to keep a connection alive.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The bytes of the line not yet ended. Lines are split on bytes, and CR and LF never
    /// occur inside a UTF-8 sequence, so one split across pushes is whole again by the time
    /// its line is decoded.
    line: Vec<u8>,
    /// The last push ended on a CR: an LF opening the next one completes that CRLF rather
    /// than ending an empty line, which would end the event.
    after_cr: bool,
    /// The event's data so far, each line followed by LF (the standard's data buffer).
    data: String,
    /// A field has been read since the last event ended.
    in_event: bool,
    /// The first line has been read: a byte order mark can only open the stream.
    started: bool,
}

impl SseParser {
    /// Reads `bytes`, the next piece of the stream, and gives the data of each event they
    /// complete, in order. An event with no `data` field gives nothing; data lines are joined
    /// with "\n". A line that is not UTF-8 fails, and the stream cannot go on after that.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<String>, ProtocolError> {
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            bytes = bytes.strip_prefix(b"\n").unwrap_or(bytes);
        }
        let mut events = Vec::new();
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let ending = bytes[end];
            bytes = &bytes[end + 1..];
            if ending == b'\r' {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            events.extend(self.end_line(&line)?);
        }
        self.line.extend_from_slice(bytes);
        Ok(events)
    }

    /// Whether the stream so far stops inside an event: in a line, or after fields with no
    /// empty line to end them. Such an event is dropped if the stream ends here, as the
    /// standard says, so a caller can tell a stream that was cut from one that ended cleanly.
    pub fn pending(&self) -> bool {
        !self.line.is_empty() || self.in_event
    }

    /// Interprets one complete line; gives the event's data when the line ends an event.
    fn end_line(&mut self, line: &[u8]) -> Result<Option<String>, ProtocolError> {
        let mut line = std::str::from_utf8(line).map_err(|_| ProtocolError::InvalidUtf8)?;
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{FEFF}').unwrap_or(line);
        }
        if line.is_empty() {
            self.in_event = false;
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        self.in_event = true;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            self.data.push_str(value);
            self.data.push('\n');
        }
        Ok(None)
    }

    /// Ends the event: its data less the last LF, unless it had no data field at all.
    fn dispatch(&mut self) -> Option<String> {
        let mut data = std::mem::take(&mut self.data);
        data.pop()?;
        Some(data)
    }
}
