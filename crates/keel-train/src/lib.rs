//! keel-train
