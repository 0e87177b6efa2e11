//! Where each byte of a normalised text came from in the original, stored as runs rather than
//! two offsets per byte: an ASCII word of any length is one run ("byte i came from original
//! byte start + i"), as is a decoded payload ("every byte came from the encoded span"), and
//! the separator after a run costs nothing ("an empty span where the run ended"). Writing two
//! `u32`s per normalised byte was a large part of normalising a prompt; spans are only looked
//! up for the few matches a scan finds.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// The first normalised byte of the run, and how many bytes it covers. Bytes after it up
    /// to the next run map to the empty span where it ended.
    at: u32,
    len: u32,
    /// The original span of the first byte.
    start: u32,
    end: u32,
    /// 1: each later byte maps one original byte further on; 0: every byte maps to the same
    /// span. A run of one byte may take either.
    step: u32,
}

impl Run {
    #[inline]
    fn last_end(&self) -> u32 {
        self.end + (self.len - 1) * self.step
    }
}

#[derive(Debug, Default, Clone)]
pub struct OffsetMap {
    runs: Vec<Run>,
    len: u32,
}

impl OffsetMap {
    pub fn clear(&mut self) {
        self.runs.clear();
        self.len = 0;
    }

    /// Normalised bytes mapped so far.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last run, when nothing has been mapped after it (so it can grow).
    #[inline]
    fn open_run(&mut self) -> Option<&mut Run> {
        let len = self.len;
        self.runs.last_mut().filter(|r| r.at + r.len == len)
    }

    /// Append `n` bytes that all came from `start..end` (one multi-byte character, a decoded
    /// payload, a separator).
    #[inline]
    pub fn push_fixed(&mut self, n: usize, start: u32, end: u32) {
        if n == 0 {
            return;
        }
        if n == 1 && end == start + 1 {
            return self.push_stepped(1, start);
        }
        match self.open_run() {
            Some(r) if (r.step == 0 || r.len == 1) && r.start == start && r.end == end => {
                r.step = 0;
                r.len += n as u32;
            }
            _ => self.new_run(n, start, end, 0),
        }
        self.len += n as u32;
    }

    /// Append `n` bytes copied one for one from original bytes `start..start + n`.
    #[inline]
    pub fn push_stepped(&mut self, n: usize, start: u32) {
        if n == 0 {
            return;
        }
        match self.open_run() {
            Some(r)
                if (r.step == 1 || r.len == 1)
                    && r.end == r.start + 1
                    && r.start + r.len == start =>
            {
                r.step = 1;
                r.len += n as u32;
            }
            _ => self.new_run(n, start, start + 1, 1),
        }
        self.len += n as u32;
    }

    /// Append a one-byte separator that maps to the empty span at `at`.
    #[inline]
    pub fn push_gap(&mut self, at: u32) {
        if self.last_end() == Some(at) {
            self.len += 1; // the empty span where the last run ended: implicit
        } else {
            self.push_fixed(1, at, at);
        }
    }

    #[inline]
    fn new_run(&mut self, n: usize, start: u32, end: u32, step: u32) {
        self.runs.push(Run {
            at: self.len,
            len: n as u32,
            start,
            end,
            step,
        });
    }

    /// The original span of normalised byte `i` (`i < len`).
    pub fn span(&self, i: usize) -> (u32, u32) {
        let i = i as u32;
        let r = &self.runs[self.runs.partition_point(|r| r.at <= i) - 1];
        if i >= r.at + r.len {
            let e = r.last_end();
            return (e, e);
        }
        let d = (i - r.at) * r.step;
        (r.start + d, r.end + d)
    }

    /// The end of the last byte's original span.
    #[inline]
    pub fn last_end(&self) -> Option<u32> {
        self.runs.last().map(Run::last_end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-byte spans the runs stand for.
    fn expand(m: &OffsetMap) -> Vec<(u32, u32)> {
        (0..m.len()).map(|i| m.span(i)).collect()
    }

    #[test]
    fn runs_merge_and_expand_to_per_byte_spans() {
        let mut m = OffsetMap::default();
        m.push_stepped(3, 10); // "abc" from 10..13
        m.push_fixed(1, 13, 14); // continues the run
        m.push_gap(14); // a separator where the run ended: no run of its own
        m.push_gap(12); // a separator elsewhere
        m.push_fixed(3, 20, 23); // one 3-byte character
        m.push_fixed(2, 20, 23); // expands to more bytes from the same character
        m.push_stepped(2, 30);
        m.push_gap(32);
        assert_eq!(
            expand(&m),
            [
                (10, 11),
                (11, 12),
                (12, 13),
                (13, 14),
                (14, 14),
                (12, 12),
                (20, 23),
                (20, 23),
                (20, 23),
                (20, 23),
                (20, 23),
                (30, 31),
                (31, 32),
                (32, 32)
            ]
        );
        assert_eq!(m.runs.len(), 4);
        assert_eq!(m.last_end(), Some(32));
        m.clear();
        assert_eq!((m.len(), m.last_end()), (0, None));
    }
}
