pub mod cli;
pub mod sim;

pub fn hello() {}
