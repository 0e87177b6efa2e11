//! keel-data
