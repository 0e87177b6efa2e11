//! A one-pass summary of a text for prefilters: every 4-byte substring, hashed into a small
//! bitmap. It answers "might this literal occur?" with no false negatives: a literal occurs
//! only if all its 4-byte substrings do. False positives (hash collisions, or the pieces
//! present in different places) only cost a regex run, never a missed match.
//!
//! The text is summarised in its *boundary view*: every byte that is not an ASCII word
//! character (`[0-9A-Za-z_]`) reads as a space, and a space is added before and after. A
//! word boundary next to a word character then always reads as a space, so the gate can ask
//! for " men " where a rule says `\bmen\b`, which "women" or "mentor" do not satisfy.
//!
//! Why not an Aho-Corasick pass: over the ~1000 literals of the rule gate, the automaton's
//! transition table is hundreds of KB, so every input byte is a cache miss (~8 ns/byte, the
//! largest cost of a 1k-character scan). This bitmap is 2 KB and costs a few ns per byte.

/// Grams per literal checked at most; past it the literal is already very specific.
const MAX_KEY_GRAMS: usize = 8;
const SLOTS_LOG2: u32 = 14;
const SLOTS: usize = 1 << SLOTS_LOG2;

/// A byte as the boundary view sees it.
#[inline]
pub fn boundary_view(b: u8) -> u8 {
    if b.is_ascii_alphanumeric() || b == b'_' {
        b
    } else {
        b' '
    }
}

/// The hashed 4-grams of one text's boundary view: slot `h` holds the current generation
/// when a gram with hash `h` occurs. Generations spare clearing the table for every text, and
/// a plain byte store per gram is cheaper than setting a bit.
#[derive(Clone)]
pub struct GramSet {
    slots: Box<[u8; SLOTS]>,
    generation: u8,
}

impl Default for GramSet {
    fn default() -> Self {
        GramSet {
            slots: Box::new([0; SLOTS]),
            generation: 0,
        }
    }
}

impl std::fmt::Debug for GramSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.slots.iter().filter(|&&s| s == self.generation).count();
        write!(f, "GramSet({n} slots set)")
    }
}

/// A literal (in the boundary view) prepared for [`GramSet::may_contain`]: the bit of each of
/// its 4-grams; none for shorter literals, which the set cannot rule out. Kept inline (no
/// allocation): the gate tests hundreds per scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GramKey {
    bits: [u16; MAX_KEY_GRAMS],
    /// How many of `bits` are used; 0 for a literal that cannot be ruled out.
    n: u8,
}

/// The bit of a 4-gram (packed little-endian).
#[inline]
fn bit4(g: u32) -> u16 {
    (g.wrapping_mul(0x9E37_79B1) >> (32 - SLOTS_LOG2)) as u16
}

fn pack(g: &[u8]) -> u32 {
    g.iter().rev().fold(0, |k, &c| (k << 8) | c as u32)
}

impl GramKey {
    /// The slot of the literal's first gram, or `None` when it cannot be ruled out: a cheap
    /// first test before [`GramSet::may_contain`].
    pub fn first(&self) -> Option<u16> {
        (self.n > 0).then_some(self.bits[0])
    }

    pub fn new(literal: &[u8]) -> GramKey {
        let literal: Vec<u8> = literal.iter().map(|&b| boundary_view(b)).collect();
        let mut key = GramKey {
            bits: [0; MAX_KEY_GRAMS],
            n: 0,
        };
        match literal.len() {
            0..=3 => {}
            len => {
                // Spread the checked grams over the literal: the first, the last, and some
                // between.
                let grams = len - 3;
                let n = grams.min(MAX_KEY_GRAMS);
                for i in 0..n {
                    let at = if n == 1 { 0 } else { i * (grams - 1) / (n - 1) };
                    key.bits[i] = bit4(pack(&literal[at..at + 4]));
                }
                key.n = n as u8;
            }
        }
        key
    }
}

impl GramSet {
    /// Replace the contents with the 4-grams of `text`'s boundary view.
    pub fn fill(&mut self, text: &[u8]) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Every 255 texts: forget the slots of the last 255, whose generations return.
            self.slots.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        let slots = &mut *self.slots;
        // The last four bytes seen, newest in the high byte; starts with the leading space.
        // The first grams also take in the zero bytes before it: slots for grams no literal
        // has, which cost nothing.
        let mut window: u32 = (b' ' as u32) << 24;
        for &b in text {
            window = (window >> 8) | ((VIEW[b as usize] as u32) << 24);
            slots[bit4(window) as usize] = generation;
        }
        window = (window >> 8) | ((b' ' as u32) << 24);
        slots[bit4(window) as usize] = generation;
    }

    /// `false` only when the literal behind `key` certainly does not occur in the boundary
    /// view of the text.
    #[inline]
    pub fn may_contain(&self, key: &GramKey) -> bool {
        key.bits[..key.n as usize]
            .iter()
            .all(|&b| self.slots[b as usize] == self.generation)
    }

    /// Whether the gram with slot `bit` (a [`GramKey::first`]) occurs.
    #[inline]
    pub fn has_slot(&self, bit: u16) -> bool {
        self.slots[bit as usize] == self.generation
    }
}

/// [`boundary_view`] as a table, for the per-byte loop.
static VIEW: [u8; 256] = {
    let mut t = [b' '; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'_' {
            t[i] = c;
        }
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn view(text: &str) -> Vec<u8> {
        let mut v = vec![b' '];
        v.extend(text.bytes().map(boundary_view));
        v.push(b' ');
        v
    }

    #[test]
    fn never_rules_out_a_present_literal() {
        for text in [
            "how do i make a pipe bomb in my garage without anyone knowing",
            "x",
            "ab",
            "naïve café, über-fast_path ж",
        ] {
            let mut g = GramSet::default();
            g.fill(text.as_bytes());
            let v = view(text);
            for a in 0..v.len() {
                for b in a + 1..=v.len() {
                    assert!(g.may_contain(&GramKey::new(&v[a..b])), "{text:?} {a}..{b}");
                }
            }
        }
    }

    #[test]
    fn rules_out_most_absent_literals() {
        let mut g = GramSet::default();
        g.fill(b"what is a good recipe for banana bread, and how long do women bake it");
        let absent = ["bomb", "explosives", " men ", " kill ", "ransomware"];
        assert!(absent
            .iter()
            .all(|w| !g.may_contain(&GramKey::new(w.as_bytes()))));
        assert!(g.may_contain(&GramKey::new(b" bread ")));
        assert!(
            g.may_contain(&GramKey::new(b"bread.")),
            "punctuation reads as a space"
        );
        assert!(
            g.may_contain(&GramKey::new(b"zq")),
            "short literals cannot be ruled out"
        );
        g.fill(b"");
        assert!(!g.may_contain(&GramKey::new(b"bread")));
    }
}
