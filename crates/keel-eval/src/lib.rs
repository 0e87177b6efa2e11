//! keel-eval
