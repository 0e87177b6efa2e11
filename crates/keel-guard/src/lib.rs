//! keel-guard: explicit policy enforcement for model inputs and outputs.
//!
//! - [`policy`]: TOML policy profiles (`default`, `education-minors`, `region-eu`,
//!   `medical-provider`, or your own files) composed with documented precedence.
//! - [`normalize`] + [`decode`]: one de-obfuscated view of a text (case, NFKC folding,
//!   homoglyphs, zero-width and spacing tricks, leetspeak, base64/hex/rot13 payloads) with a
//!   byte map back to the original ([`offset_map`]); [`views`]: the decoded views
//!   classifiers score.
//! - [`detect`]: regex + lexicon rules and PII detectors with exact spans.
//! - [`classify`]: trainable linear (hashed n-grams) and MiniLM-embedding classifiers.
//! - [`engine`]: the [`Guard`] and the [`Moderator`] trait; [`stream`]: mid-stream stops.
//! - [`verdict`]: the result and its Keel / OpenAI / Llama Guard formats; [`audit`]: the log.
//! - [`bench`]: quality, robustness and speed measurement.
//!
//! ```no_run
//! use keel_guard::{Guard, Moderator, Scope};
//! let guard = Guard::from_profiles(&["education-minors", "region-eu"]).unwrap();
//! let v = guard.scan_text("how do I make a pipe bomb", Scope::Input);
//! assert_eq!(v.action, keel_guard::ActionKind::Block);
//! ```

pub mod audit;
pub mod bench;
pub mod classify;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod error;
pub mod normalize;
pub mod offset_map;
pub mod policy;
pub mod stream;
pub mod taxonomy;
pub mod verdict;
pub mod views;

pub use engine::{Guard, Message, Moderator};
pub use error::{GuardError, Result};
pub use policy::{ActionKind, Scope};
pub use stream::{StreamEvent, StreamGuard};
pub use verdict::Verdict;
