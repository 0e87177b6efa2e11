//! Streaming output checks: the guard sees the response as it is generated and can stop it
//! mid-stream. Each check covers a sliding window of the most recent text (so cost per token
//! stays bounded however long the answer grows), and windows overlap by more than any rule's
//! reach so a phrase split across chunks is still seen whole.

use crate::engine::{Guard, Moderator};
use crate::policy::{ActionKind, Scope};
use crate::verdict::Verdict;

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Keep streaming; `flagged` carries a verdict that flagged without stopping.
    Continue { flagged: Option<Box<Verdict>> },
    /// Stop the response; the verdict says why (spans are offsets in the whole stream).
    Stop(Box<Verdict>),
}

pub struct StreamGuard<'g> {
    guard: &'g Guard,
    buf: String,
    window: usize,
    stride: usize,
    checked: usize,
    stopped: bool,
}

impl<'g> StreamGuard<'g> {
    /// `window`: bytes of recent text each check sees; `stride`: new bytes between checks.
    pub fn new(guard: &'g Guard, window: usize, stride: usize) -> Self {
        StreamGuard {
            guard,
            buf: String::new(),
            window: window.max(16),
            stride: stride.max(1),
            checked: 0,
            stopped: false,
        }
    }

    /// Everything streamed so far.
    pub fn text(&self) -> &str {
        &self.buf
    }

    /// Feed the next chunk of model output.
    pub fn push(&mut self, chunk: &str) -> StreamEvent {
        if self.stopped {
            return StreamEvent::Stop(Box::new(self.check()));
        }
        self.buf.push_str(chunk);
        if self.buf.len() - self.checked < self.stride {
            return StreamEvent::Continue { flagged: None };
        }
        self.decide()
    }

    /// The stream ended: check whatever was not checked yet.
    pub fn finish(&mut self) -> StreamEvent {
        if self.checked == self.buf.len() && !self.stopped {
            return StreamEvent::Continue { flagged: None };
        }
        self.decide()
    }

    fn decide(&mut self) -> StreamEvent {
        let v = self.check();
        self.checked = self.buf.len();
        if matches!(v.action, ActionKind::Block | ActionKind::Redirect) {
            self.stopped = true;
            return StreamEvent::Stop(Box::new(v));
        }
        StreamEvent::Continue {
            flagged: v.flagged.then(|| Box::new(v)),
        }
    }

    fn check(&self) -> Verdict {
        let mut start = self.buf.len().saturating_sub(self.window);
        while !self.buf.is_char_boundary(start) {
            start += 1;
        }
        let mut v = self.guard.scan_text(&self.buf[start..], Scope::Output);
        for h in &mut v.hits {
            h.start += start;
            h.end += start;
        }
        v
    }
}
