//! Client-certificate mapping strategies.

pub mod many_to_one;
